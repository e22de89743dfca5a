"""File tools confined to one workspace folder (one per user, when configured so).

Paths come from chat messages, so they are untrusted. Every path is walked component by
component from the workspace with directory file descriptors (``studio_nb.services.
confined``): ``..`` never climbs above the workspace, symlinks are followed only while
they stay inside, and a link swapped in during the call makes the open fail instead of
leading out. Regular files with more than one hard link are refused (their other names
may be anywhere). Reads are capped; listings never follow links and report a link that
loops or leads out as an entry, never failing the whole folder.

The workspace may contain ``{user}`` (e.g. ``/home/{user}``): each user then gets that
folder, which must exist. The registry passes the requesting user to ``read_file`` and
``list_files`` (the ``user`` keyword is not part of the tools' JSON arguments).
"""

from __future__ import annotations

import codecs
import fnmatch
import os
import re
import stat
from pathlib import Path

from studio_nb.errors import PathEscapeError, ToolError
from studio_nb.services.confined import ConfinedError, Root

MAX_READ_BYTES = 1 << 20
DEFAULT_READ_BYTES = 64 * 1024
MAX_LIST_ENTRIES = 1000
MAX_LIST_DEPTH = 32
SKIP_DIRS = frozenset({".git", "__pycache__", ".venv", "node_modules", ".ipynb_checkpoints"})
_USER = re.compile(r"^[A-Za-z0-9_@+\-][A-Za-z0-9._@+\-]{0,127}$")


class Workspace:
    """The folder file tools may see; ``root`` may contain ``{user}`` (one folder per user)."""

    def __init__(self, root: str | os.PathLike) -> None:
        text = os.path.expanduser(str(root))
        self.template = text if "{user}" in text else None
        if self.template is None:
            self._root = Root(text)
            if not self._root.path.is_dir():
                raise ToolError(f"workspace {self._root.path} is not a folder; create it or pass another one")

    @property
    def root(self) -> Path:
        """The workspace folder (for a per-user template, the template as a path)."""
        return self._root.path if self.template is None else Path(self.template)

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    def for_user(self, user: str | None) -> Root:
        """The confined root for ``user`` (the one root when there is no ``{user}``)."""
        if self.template is None:
            return self._root
        if user is None or not _USER.match(user) or user in (".", ".."):
            raise ToolError(f"no workspace for user {user!r}: the workspace is per user ({self.template})")
        root = Root(self.template.replace("{user}", user))
        if not root.path.is_dir():
            raise ToolError(f"user {user!r} has no workspace folder ({root.path}); ask the server's admin")
        return root

    # ------------------------------------------------------------------ tools
    def read_file(self, path: str, max_bytes: int = DEFAULT_READ_BYTES, *, user: str | None = None) -> dict:
        """Up to ``max_bytes`` of a text file (UTF-8); undecodable bytes are counted, not hidden."""
        root = self.for_user(user)
        _check_path(path)
        max_bytes = max(1, min(int(max_bytes), MAX_READ_BYTES))
        try:
            fd, rel = root.open_file(path)
        except ConfinedError as exc:
            raise ToolError(f"{exc}; try list_files first" if "no file" in str(exc) else str(exc)) from None
        with os.fdopen(fd, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            data = fh.read(max_bytes)
        truncated = size > len(data)
        if b"\x00" in data[:8192]:
            raise ToolError(f"{rel!r} looks binary ({size} bytes); only text files can be read")
        text, errors = _decode(data, final=not truncated)
        return {"path": rel, "size": size, "truncated": truncated, "encoding": "utf-8",
                "decode_errors": errors, "text": text}

    def list_files(self, path: str = ".", pattern: str = "*", recursive: bool = False,
                   limit: int = 200, *, user: str | None = None) -> dict:
        """Entries of a workspace folder matching a glob ``pattern`` (``recursive`` walks down).

        A symlink is listed with ``inside_workspace`` (and ``problem`` when it loops or
        dangles); a sub-folder that cannot be read is reported under ``skipped``.
        """
        root = self.for_user(user)
        _check_path(path)
        if not isinstance(pattern, str) or not pattern or ".." in pattern.split("/") or pattern.startswith("/"):
            raise ToolError(f"bad pattern {pattern!r}; use a glob such as '*.py' or 'docs/*.md'")
        limit = max(1, min(int(limit), MAX_LIST_ENTRIES))
        try:
            top = root.walk(path)
        except ConfinedError as exc:
            raise ToolError(str(exc)) from None
        if top.name is not None:
            top.close()
            raise ToolError(f"{top.rel!r} is not a folder")
        lister = _Lister(root, top.parts, pattern, limit, recursive)
        try:
            lister.scan(top.dir_fd, [], 0)
        finally:
            top.close()
        return {"path": top.rel, "pattern": pattern, "entries": lister.entries, "truncated": lister.truncated,
                "skipped": lister.skipped}


class _Lister:
    """One listing: entries in os.walk order (a folder's sub-folders, then its files)."""

    def __init__(self, root: Root, base: list[str], pattern: str, limit: int, recursive: bool) -> None:
        self.root, self.base, self.pattern, self.limit, self.recursive = root, base, pattern, limit, recursive
        self.entries: list[dict] = []
        self.skipped: list[dict] = []
        self.truncated = False

    def scan(self, dir_fd: int, rel: list[str], depth: int) -> None:
        items = []
        try:
            with os.scandir(dir_fd) as it:
                for e in it:
                    try:
                        items.append((e.name, e.stat(follow_symlinks=False)))
                    except OSError as exc:  # gone or unreadable since it was listed: say so, go on
                        self.skipped.append({"path": self._path([*rel, e.name]), "reason": exc.strerror or str(exc)})
        except OSError as exc:
            self.skipped.append({"path": self._path(rel), "reason": exc.strerror or str(exc)})
            return
        items.sort(key=lambda item: item[0])
        dirs = [(n, st) for n, st in items if stat.S_ISDIR(st.st_mode) and n not in SKIP_DIRS]
        others = [(n, st) for n, st in items if not stat.S_ISDIR(st.st_mode)]
        for name, st in dirs + others:
            sub = [*rel, name]
            if not fnmatch.fnmatch("/".join(sub) if "/" in self.pattern else name, self.pattern):
                continue
            if len(self.entries) >= self.limit:
                self.truncated = True
                return
            self.entries.append(self._entry(sub, st))
        if not self.recursive:
            return
        for name, _st in dirs:
            if self.truncated:
                return
            if depth + 1 >= MAX_LIST_DEPTH:
                self.skipped.append({"path": self._path([*rel, name]), "reason": f"deeper than {MAX_LIST_DEPTH}"})
                continue
            try:
                sub_fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
            except OSError as exc:  # swapped for a link, or unreadable: skip it, keep the rest
                self.skipped.append({"path": self._path([*rel, name]), "reason": exc.strerror or str(exc)})
                continue
            try:
                self.scan(sub_fd, [*rel, name], depth + 1)
            finally:
                os.close(sub_fd)

    def _path(self, rel: list[str]) -> str:
        return "/".join([*self.base, *rel]) or "."

    def _entry(self, rel: list[str], st: os.stat_result) -> dict:
        path = self._path(rel)
        if stat.S_ISLNK(st.st_mode):
            entry = {"path": path, "type": "symlink", "inside_workspace": True}
            try:
                self.root.walk(path).close()
            except PathEscapeError:
                entry["inside_workspace"] = False
            except ConfinedError as exc:  # a loop, a dangling link: said, not fatal
                entry["problem"] = str(exc)
                self.skipped.append({"path": path, "reason": str(exc)})
            except OSError as exc:
                entry["problem"] = exc.strerror or str(exc)
            return entry
        if stat.S_ISDIR(st.st_mode):
            return {"path": path, "type": "dir"}
        return {"path": path, "type": "file", "size": st.st_size}


def _check_path(path: object) -> None:
    if not isinstance(path, str) or not path.strip():
        raise ToolError("path must be a non-empty string, e.g. 'README.md'")
    if "\x00" in path:
        raise ToolError("path contains a NUL character")


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
