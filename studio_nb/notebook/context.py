"""The notebook as context: the last error with the cell that raised it, the current cell,
and code from an answer put back into the notebook.

    req = explain_error_request(shell)   # None when nothing failed yet
    pipe.ask(req.question, attachments=req.attachments, search=req.search)

A question about an error is only answerable with the code that raised it, so the
failing cell (found through the traceback's own frames, not by guessing ``In[-2]``) is
attached to the question as evidence of its own, cited ``In[7]``. Retrieval does not
search for the whole traceback — a wall of frames matches nothing well — but for the
error's names: the exception type and the identifiers its message and the failing line
mention (``NameError: name 'ParallelGroup' is not defined`` searches for
``ParallelGroup``).
"""

from __future__ import annotations

import keyword
import linecache
import re
import sys
import traceback
from dataclasses import dataclass
from typing import Any

from studio_nb.messages import Attachment

#: how much of a traceback goes into the question (its tail holds the error itself)
TRACEBACK_CHARS = 1500
#: the longest cell attached whole
CELL_CHARS = 4000
_QUOTED = re.compile(r"['\"]([A-Za-z_][\w.]*)['\"]")
_IDENT = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]{2,}\b")
_BORING = set(keyword.kwlist) | {"self", "None", "True", "False", "print", "import", "from", "object", "has",
                                 "not", "defined", "name", "attribute", "module", "the", "and"}
_CODE_BLOCK = re.compile(r"```[^\n`]*\n(.*?)(?:```|\Z)", re.DOTALL)


@dataclass(frozen=True)
class ErrorRequest:
    """What ``--explain-error`` asks: the question, the failing cell attached, what to search."""

    question: str
    attachments: tuple[Attachment, ...]
    search: str
    error: str  # "NameError: name 'x' is not defined"


def cell_label(shell: Any, filename: str) -> str | None:
    """``In[7]`` for a frame in the cell run as execution 7 (None: not a notebook cell)."""
    mapping = getattr(getattr(shell, "compile", None), "_filename_map", None) or {}
    if filename in mapping:
        return f"In[{mapping[filename]}]"
    m = re.match(r"<ipython-input-(\d+)-", filename)
    return f"In[{m.group(1)}]" if m else None


def failing_cell(shell: Any, tb: Any) -> tuple[str, str, int] | None:
    """(label, code, line number) of the deepest notebook cell in the traceback ``tb``."""
    found = None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        label = cell_label(shell, filename)
        if label is not None:
            lines = linecache.getlines(filename)
            if lines:
                found = (label, "".join(lines), tb.tb_lineno)
        tb = tb.tb_next
    return found


def error_names(exc: BaseException, line: str = "") -> list[str]:
    """The names an error is about: its type, names quoted in its message, identifiers on
    the failing line (most specific first, without duplicates or keywords)."""
    names = [type(exc).__name__]
    names += [n.split(".")[-1] for n in _QUOTED.findall(str(exc))]
    names += _IDENT.findall(line)
    out: list[str] = []
    for n in names:
        if n not in _BORING and n not in out:
            out.append(n)
    return out[:8]


def explain_error_request(shell: Any, extra: str = "") -> ErrorRequest | None:
    """The question about the last traceback shown in this kernel (None if none yet)."""
    exc = getattr(sys, "last_value", None)
    if exc is None:
        return None
    tb = getattr(sys, "last_traceback", None)
    cell = failing_cell(shell, tb)
    text = "".join(traceback.format_exception(type(exc), exc, tb)).rstrip()
    if len(text) > TRACEBACK_CHARS:
        text = "...\n" + text[-TRACEBACK_CHARS:]
    error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    attachments: tuple[Attachment, ...] = ()
    line = ""
    where = ""
    if cell is not None:
        label, code, lineno = cell
        lines = code.splitlines()
        line = lines[lineno - 1] if 0 < lineno <= len(lines) else ""
        attachments = (Attachment(label, code[:CELL_CHARS].rstrip()),)
        where = f" in cell {label}, line {lineno}: `{line.strip()}`" if line.strip() else f" in cell {label}"
    question = f"Explain this error and how to fix it{where}.\n\n{error}\n\nTraceback:\n{text}"
    if extra.strip():
        question = f"{extra.strip()}\n\n{question}"
    return ErrorRequest(question, attachments, " ".join(error_names(exc, line)), error)


def current_cell(shell: Any, code: str) -> Attachment:
    """The cell being run, attached as context (cited ``In[N]``, N its execution count)."""
    return Attachment(f"In[{getattr(shell, 'execution_count', '?')}]", code[:CELL_CHARS].rstrip())


def code_blocks(text: str) -> str:
    """The fenced code blocks of an answer, joined ("" when it has none)."""
    return "\n\n".join(b.strip("\n") for b in _CODE_BLOCK.findall(text or "") if b.strip())


def insert_code(shell: Any, answer: str) -> bool:
    """Put the answer's code into a new cell below this one (``set_next_input``); False
    when the answer has no code block (nothing is inserted then)."""
    code = code_blocks(answer)
    if not code:
        return False
    shell.set_next_input(code, replace=False)
    return True


__all__ = ["ErrorRequest", "code_blocks", "current_cell", "error_names", "explain_error_request", "failing_cell",
           "insert_code"]
