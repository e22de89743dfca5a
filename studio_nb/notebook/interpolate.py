"""``{var}`` interpolation of chat prompts from the user's namespace, without ``eval``.

``string.Formatter().parse`` splits the prompt into literal text and ``{field}`` parts.
A field is replaced only when it is a plain name found in the namespace, optionally
followed by integer subscripts (``{In[-2]}``, ``{Out[3]}``); a conversion and format spec
are applied as ``str.format`` would. Anything else (unknown names, attribute access,
dict literals in pasted code, a failing format) stays exactly as written, so pasting
code with braces into ``%%sage_chat`` is safe. A prompt that ``str.format`` cannot even
parse (a lone ``{``) is returned unchanged. ``{{`` and ``}}`` give literal braces.
"""

from __future__ import annotations

import os
import re
import string
import sys
import traceback
from collections.abc import Mapping
from typing import Any

_FIELD = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)((?:\[-?\d+\])*)$")
_INDEX = re.compile(r"\[(-?\d+)\]")
_FORMATTER = string.Formatter()

#: how much of a traceback goes into a prompt (its tail: the error itself is at the end)
ERR_CHARS = 2000


def _literal(field: str, conversion: str | None, spec: str) -> str:
    return "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"


def _resolve(field: str, namespace: Mapping[str, Any]) -> Any:
    m = _FIELD.match(field.strip())
    if m is None or m.group(1) not in namespace:
        raise LookupError(field)
    value = namespace[m.group(1)]
    for index in _INDEX.findall(m.group(2)):
        value = value[int(index)]
    return value


def interpolate(text: str, namespace: Mapping[str, Any]) -> str:
    """Replace the ``{name}`` fields of ``text`` that ``namespace`` knows; keep the rest."""
    try:
        parts = list(_FORMATTER.parse(text))
    except ValueError:  # unbalanced braces: not a template, leave it alone
        return text
    out: list[str] = []
    for literal, field, spec, conversion in parts:
        out.append(literal)
        if field is None:
            continue
        spec = spec or ""
        try:
            value = _resolve(field, namespace)
            if conversion:
                value = _FORMATTER.convert_field(value, conversion)
            out.append(format(value, spec))
        except Exception:  # noqa: BLE001  # unknown name, bad index, bad spec: keep what the user wrote
            out.append(_literal(field, conversion, spec))
    return "".join(out)


def _in_ipython(filename: str) -> bool:
    return f"{os.sep}IPython{os.sep}" in filename


def last_error_text(limit: int = ERR_CHARS) -> str | None:
    """The traceback of the last exception shown in this process (``sys.last_*``), as text.

    IPython records the last failing cell's exception there. Only the tail is kept when
    it is long: the exception message is what a model needs most.
    """
    value = getattr(sys, "last_value", None)
    if value is None:
        return None
    tb = first = getattr(sys, "last_traceback", None)
    while tb is not None and _in_ipython(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next  # IPython's own run_code frame says nothing about the user's error
    tb = tb or first
    text = "".join(traceback.format_exception(type(value), value, tb)).rstrip()
    if len(text) > limit:
        text = "...\n" + text[-limit:]
    return text


def prompt_namespace(user_ns: Mapping[str, Any]) -> dict[str, Any]:
    """The names a prompt may use: the user's variables plus ``Err`` (last traceback).

    ``In`` and ``Out`` are IPython's own input/output history and are already there.
    """
    ns = dict(user_ns)
    ns.setdefault("Err", last_error_text() or "(no error so far)")
    return ns
