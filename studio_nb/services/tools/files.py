"""File tools confined to one workspace folder.

Paths come from chat messages, so they are untrusted. Every path is resolved (symlinks
and ``..`` followed) *before* the check, and must land inside the resolved workspace;
otherwise PathEscapeError. Absolute paths are accepted only when they point inside.
The final open uses ``O_NOFOLLOW`` so a symlink swapped in after the check is refused
rather than followed. Reads are capped, directory walks never follow symlinks.
"""

from __future__ import annotations

import codecs
import fnmatch
import os
from pathlib import Path

from studio_nb.errors import PathEscapeError, ToolError

MAX_READ_BYTES = 1 << 20
DEFAULT_READ_BYTES = 64 * 1024
MAX_LIST_ENTRIES = 1000
SKIP_DIRS = frozenset({".git", "__pycache__", ".venv", "node_modules", ".ipynb_checkpoints"})


class Workspace:
    """The folder file tools may see; ``resolve`` is the single gate every path passes."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise ToolError(f"workspace {self.root} is not a folder; create it or pass another one")

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    def resolve(self, path: str) -> Path:
        """The real path of ``path`` (relative to the workspace), or PathEscapeError."""
        if not isinstance(path, str) or not path.strip():
            raise ToolError("path must be a non-empty string, e.g. 'README.md'")
        if "\x00" in path:
            raise ToolError("path contains a NUL character")
        candidate = Path(path).expanduser()
        if not candidate.is_absolute():
            candidate = self.root / candidate
        real = candidate.resolve()
        if real != self.root and not real.is_relative_to(self.root):
            raise PathEscapeError(
                f"path {path!r} is outside the workspace {self.root}; use a path inside it, "
                "relative to the workspace"
            )
        return real

    def relative(self, real: Path) -> str:
        return real.relative_to(self.root).as_posix() or "."

    def read_file(self, path: str, max_bytes: int = DEFAULT_READ_BYTES) -> dict:
        """Up to ``max_bytes`` of a text file (UTF-8); undecodable bytes are counted, not hidden."""
        real = self.resolve(path)
        max_bytes = max(1, min(int(max_bytes), MAX_READ_BYTES))
        if not real.exists():
            raise ToolError(f"no file {self.relative(real)!r} in the workspace; try list_files first")
        if not real.is_file():
            raise ToolError(f"{self.relative(real)!r} is not a regular file; use list_files for folders")
        try:
            fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError as exc:
            raise ToolError(f"cannot open {self.relative(real)!r}: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            data = fh.read(max_bytes)
        truncated = size > len(data)
        if b"\x00" in data[:8192]:
            raise ToolError(f"{self.relative(real)!r} looks binary ({size} bytes); only text files can be read")
        text, errors = _decode(data, final=not truncated)
        return {"path": self.relative(real), "size": size, "truncated": truncated, "encoding": "utf-8",
                "decode_errors": errors, "text": text}

    def list_files(self, path: str = ".", pattern: str = "*", recursive: bool = False,
                   limit: int = 200) -> dict:
        """Entries of a workspace folder matching a glob ``pattern`` (``recursive`` walks down)."""
        real = self.resolve(path)
        if not real.is_dir():
            raise ToolError(f"{self.relative(real)!r} is not a folder")
        if not isinstance(pattern, str) or not pattern or ".." in pattern.split("/") or pattern.startswith("/"):
            raise ToolError(f"bad pattern {pattern!r}; use a glob such as '*.py' or 'docs/*.md'")
        limit = max(1, min(int(limit), MAX_LIST_ENTRIES))
        entries: list[dict] = []
        truncated = False
        for dirpath, dirnames, filenames in os.walk(real, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
            for name in sorted(dirnames) + sorted(filenames):
                full = Path(dirpath, name)
                rel = full.relative_to(real).as_posix()
                if not fnmatch.fnmatch(rel if "/" in pattern else name, pattern):
                    continue
                if len(entries) >= limit:
                    truncated = True
                    break
                entries.append(self._entry(full))
            if truncated or not recursive:
                break
        return {"path": self.relative(real), "pattern": pattern, "entries": entries, "truncated": truncated}

    def _entry(self, full: Path) -> dict:
        rel = full.relative_to(self.root).as_posix()
        if full.is_symlink():
            target = full.resolve()
            inside = target == self.root or target.is_relative_to(self.root)
            return {"path": rel, "type": "symlink", "inside_workspace": inside}
        if full.is_dir():
            return {"path": rel, "type": "dir"}
        try:
            size = full.stat().st_size
        except OSError:
            size = None
        return {"path": rel, "type": "file", "size": size}


def _decode(data: bytes, final: bool) -> tuple[str, int]:
    """UTF-8 text and the number of replaced bytes; a multi-byte character cut by the
    size cap at the end is dropped, not counted as an error."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    try:
        return decoder.decode(data, final=final), 0
    except UnicodeDecodeError:
        pass
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    text = decoder.decode(data, final=final)
    return text, text.count("\ufffd")
