"""JSON and YAML split by top-level key, keeping each key's line range.

A config file is looked up by key ("what does ``retriever.top_k`` do"), so a top-level
key with its whole value is the unit. Files are parsed (``json`` / ``yaml.safe_load``)
only to reject broken ones; the ranges come from the text, so a chunk is still exactly
those lines. Tiny neighbouring keys are merged; data that is not a mapping, or a JSON
file squeezed onto a few lines, is cut into plain windows.
"""

from __future__ import annotations

import json
import re

from studio_nb.services.knowledge.split_text import SplitConfig, pack_lines, sections_to_pieces
from studio_nb.services.knowledge.types import Piece

_YAML_KEY = re.compile(r"""^(?:"([^"]+)"|'([^']+)'|([^\s#\-][^:#]*?))\s*:(?:\s|$)""")


def _json_key_lines(text: str) -> list[tuple[int, str]]:
    """``(line, key)`` for each key of the top-level JSON object, by scanning the text."""
    out: list[tuple[int, str]] = []
    depth, line, i, n = 0, 1, 0, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
        elif c == '"':
            j, start_line = i + 1, line
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if depth == 1:
                k = j + 1
                while k < n and text[k] in " \t\r\n":
                    k += 1
                if k < n and text[k] == ":":
                    out.append((start_line, json.loads(text[i : j + 1])))
            line += text.count("\n", i, j)
            i = j
        elif c in "{[":
            depth += 1
        elif c in "}]":
            depth -= 1
        i += 1
    return out


def _keyed(lines: list[str], keys: list[tuple[int, str]], kind: str, cfg: SplitConfig) -> list[Piece]:
    starts = [ln for ln, _ in keys]
    sections = []
    if starts and starts[0] > 1:
        sections.append(("", 1, starts[0] - 1, False))
    for n, (ln, key) in enumerate(keys):
        end = starts[n + 1] - 1 if n + 1 < len(starts) else len(lines)
        sections.append((str(key), ln, end, True))
    return sections_to_pieces(lines, sections, kind, cfg)


def split_json(text: str, cfg: SplitConfig) -> list[Piece]:
    """Pieces of a JSON document (raises ValueError when it does not parse)."""
    data = json.loads(text)
    lines = text.split("\n")
    keys = _json_key_lines(text) if isinstance(data, dict) else []
    if not keys or len({ln for ln, _ in keys}) < len(keys):
        return pack_lines(lines, 1, len(lines), "", "json", cfg)
    return _keyed(lines, keys, "json", cfg)


def split_yaml(text: str, cfg: SplitConfig) -> list[Piece]:
    """Pieces of a YAML document (raises ValueError when it does not parse)."""
    import yaml

    try:
        data = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise ValueError(f"invalid YAML: {exc}") from None
    lines = text.split("\n")
    keys = []
    if len(data) == 1 and isinstance(data[0], dict):
        for no, line in enumerate(lines, 1):
            m = _YAML_KEY.match(line)
            if m:
                keys.append((no, next(g for g in m.groups() if g)))
    if not keys:
        return pack_lines(lines, 1, len(lines), "", "yaml", cfg)
    return _keyed(lines, keys, "yaml", cfg)
