"""Which files of an ingested folder to skip: ``.studioignore`` plus folders never worth it.

The syntax is a practical subset of ``.gitignore`` matched with ``fnmatch``: ``#``
comments, ``!`` re-includes, a trailing ``/`` matches folders only, a pattern with a
``/`` (or a leading one) is anchored at the ingested root, one without matches a name at
any depth; the last matching pattern wins. Version-control, cache and dependency folders
are always skipped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Iterator

ALWAYS_IGNORED = frozenset({".git", "__pycache__", ".ipynb_checkpoints", "node_modules"})
IGNORE_FILE = ".studioignore"


@dataclass(frozen=True)
class _Rule:
    pattern: str
    negate: bool
    dir_only: bool
    anchored: bool

    def matches(self, rel: str, is_dir: bool) -> bool:
        if self.dir_only and not is_dir:
            return False
        if self.anchored:
            return fnmatchcase(rel, self.pattern) or fnmatchcase(rel, self.pattern + "/*")
        return fnmatchcase(rel.rsplit("/", 1)[-1], self.pattern)


class IgnoreRules:
    """Parsed ``.studioignore`` patterns; ``ignored(rel_path, is_dir)`` decides."""

    def __init__(self, patterns: list[str] | tuple[str, ...] = ()) -> None:
        self.rules: list[_Rule] = []
        for raw in patterns:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            line = line[1:] if negate else line
            dir_only = line.endswith("/")
            line = line.rstrip("/")
            anchored = "/" in line
            line = line.lstrip("/")
            if line.startswith("**/"):
                line, anchored = line[3:], "/" in line[3:]
            if line:
                self.rules.append(_Rule(line, negate, dir_only, anchored))

    @classmethod
    def from_root(cls, root: Path) -> "IgnoreRules":
        f = root / IGNORE_FILE
        try:
            return cls(f.read_text(encoding="utf-8", errors="replace").splitlines())
        except OSError:
            return cls()

    def ignored(self, rel: str, is_dir: bool = False) -> bool:
        if rel.split("/")[-1] in ALWAYS_IGNORED:
            return True
        verdict = False
        for rule in self.rules:
            if rule.matches(rel, is_dir):
                verdict = not rule.negate
        return verdict


def walk_files(root: Path, rules: IgnoreRules) -> Iterator[tuple[Path, str]]:
    """``(path, relative posix path)`` of every non-ignored file under ``root``, sorted.

    An ignored folder is not descended into (as git does), so a ``!`` rule cannot
    re-include a file inside it.
    """
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        rel_dir = base.relative_to(root).as_posix()
        prefix = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = sorted(d for d in dirnames if not rules.ignored(prefix + d, True))
        for name in sorted(filenames):
            if name == IGNORE_FILE or rules.ignored(prefix + name, False):
                continue
            yield base / name, prefix + name
