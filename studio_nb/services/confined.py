"""Paths confined to a root folder, walked one component at a time with directory fds.

Why not ``Path.resolve()`` and a prefix check: between that check and the ``open`` a
symlink can be swapped in (the attack test leaked 2 of 3,000 reads), and ``O_NOFOLLOW``
guards only the last component. Here every component is opened relative to the file
descriptor of its parent with ``O_NOFOLLOW`` (directories also ``O_DIRECTORY``), so a
link swapped in at any moment makes the open fail instead of leading out. Symlinks are
still honoured when they stay inside: their target is read with ``readlink`` and walked
by the same rules (``..`` never climbs above the root, absolute targets must lie under
it), with a bound on how many links one path may use, so a loop is an error, not a hang.

Used by the file tools (reads that may follow inner links) and by uploads
(:func:`write_file`: plain names only, nothing followed, atomic replace).
"""

from __future__ import annotations

import os
import shutil
import stat
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from studio_nb.errors import PathEscapeError, StudioError

MAX_LINKS = 40  # the kernel's own limit for one path (ELOOP)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # a FIFO must not block the open


class ConfinedError(StudioError):
    """A path that cannot be walked inside the root (missing, a loop, not a folder, raced)."""

    code = "tool_error"


class LinkLoopError(ConfinedError):
    pass


@dataclass
class Walked:
    """Where a path led: its parts below the root, and an open fd of the folder holding it.

    ``name`` is the last component (None when the path is the root itself or ends on a
    folder, then ``dir_fd`` is that folder). Close it with :meth:`close`.
    """

    parts: list[str]
    dir_fd: int
    name: str | None
    st: os.stat_result

    @property
    def rel(self) -> str:
        return "/".join(self.parts) or "."

    def close(self) -> None:
        os.close(self.dir_fd)


class Root:
    """One folder paths are confined to; ``root`` is resolved once, when created."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.path = Path(root).expanduser().resolve()

    def __repr__(self) -> str:
        return f"Root({str(self.path)!r})"

    # ------------------------------------------------------------------ parsing
    def split(self, path: str) -> list[str]:
        """The components of ``path`` below the root (absolute paths must point inside)."""
        if "\x00" in path:
            raise ConfinedError("path contains a NUL character")
        p = os.path.expanduser(path)
        if os.path.isabs(p):
            p = os.path.normpath(p)
            root = str(self.path)
            if p != root and not p.startswith(root.rstrip("/") + "/"):
                raise self.escape(path)
            p = p[len(root):]
        return [c for c in p.split("/") if c not in ("", ".")]

    def escape(self, path: str) -> PathEscapeError:
        return PathEscapeError(
            f"path {path!r} is outside the workspace {self.path}; use a path inside it, relative to the workspace"
        )

    # ------------------------------------------------------------------ walking
    def walk(self, path: str, *, follow: bool = True) -> Walked:
        """Walk ``path`` from the root without ever leaving it.

        ``follow``: resolve symlinks whose targets stay inside (False: any symlink is an
        error). Raises PathEscapeError when the path or a link leads out, LinkLoopError
        after MAX_LINKS links, ConfinedError for a missing component.
        """
        pending = deque(self.split(path))
        stack = [os.open(self.path, _DIR_FLAGS)]
        parts: list[str] = []
        links = 0
        try:
            while pending:
                name = pending.popleft()
                if name in ("", "."):
                    continue
                if name == "..":
                    if not parts:
                        raise self.escape(path)
                    os.close(stack.pop())
                    parts.pop()
                    continue
                try:
                    st = os.stat(name, dir_fd=stack[-1], follow_symlinks=False)
                except FileNotFoundError:
                    raise ConfinedError(f"no file {'/'.join([*parts, name])!r} in the workspace") from None
                except OSError as exc:
                    raise ConfinedError(f"cannot look at {'/'.join([*parts, name])!r}: {exc.strerror}") from None
                if stat.S_ISLNK(st.st_mode):
                    if not follow:
                        raise self.escape(path)
                    links += 1
                    if links > MAX_LINKS:
                        raise LinkLoopError(f"{path!r} goes through more than {MAX_LINKS} symlinks (a symlink loop?)")
                    try:
                        target = os.readlink(name, dir_fd=stack[-1])
                    except OSError as exc:  # no longer a link: swapped after the stat
                        raise ConfinedError(f"{path!r} changed while it was opened ({exc.strerror}); try again") from None
                    if os.path.isabs(target):
                        if not _inside(target, self.path):
                            raise self.escape(path)
                        rel = self.split(target)
                        while len(stack) > 1:  # restart from the root
                            os.close(stack.pop())
                        parts.clear()
                        pending.extendleft(reversed(rel))
                    else:
                        pending.extendleft(reversed(target.split("/")))
                    continue
                if stat.S_ISDIR(st.st_mode):
                    stack.append(self._open_dir(name, stack[-1], path))
                    parts.append(name)
                    continue
                if pending:
                    raise ConfinedError(f"{'/'.join([*parts, name])!r} is not a folder")
                walked = Walked([*parts, name], stack.pop(), name, st)
                return walked
            dir_st = os.fstat(stack[-1])
            return Walked(parts, stack.pop(), None, dir_st)
        finally:
            for fd in stack:
                os.close(fd)

    def _open_dir(self, name: str, dir_fd: int, path: str) -> int:
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        except OSError as exc:  # swapped for a link (ELOOP/ENOTDIR) after the stat
            raise ConfinedError(f"{path!r} changed while it was opened ({exc.strerror}); try again") from None

    def open_file(self, path: str, *, follow: bool = True) -> tuple[int, str]:
        """An fd of the regular file at ``path`` and its path below the root.

        Refuses a file with more than one hard link: its other names may be anywhere on
        the file system (a hard link to ``/etc/shadow`` placed in the workspace looks like
        an ordinary file), and finding them would mean scanning the disk. So a hard-linked
        file is never read, even when its other name is inside too.
        """
        w = self.walk(path, follow=follow)
        try:
            if w.name is None:
                raise ConfinedError(f"{w.rel!r} is not a regular file; use list_files for folders")
            try:
                fd = os.open(w.name, _FILE_FLAGS, dir_fd=w.dir_fd)
            except OSError as exc:
                raise ConfinedError(f"cannot open {w.rel!r}: {exc.strerror}") from None
            st = os.fstat(fd)
            problem = None
            if not stat.S_ISREG(st.st_mode):
                problem = ConfinedError(f"{w.rel!r} is not a regular file; use list_files for folders")
            elif st.st_nlink > 1:
                problem = PathEscapeError(
                    f"{w.rel!r} has {st.st_nlink} hard links; hard-linked files are not read because their "
                    "other names may be outside the workspace (copy the file instead)"
                )
            elif (st.st_dev, st.st_ino) != (w.st.st_dev, w.st.st_ino):
                problem = ConfinedError(f"{w.rel!r} changed while it was opened; try again")
            if problem is not None:
                os.close(fd)
                raise problem
            os.set_blocking(fd, True)
            return fd, w.rel
        finally:
            w.close()

    def open_dir(self, path: str, *, create: bool = False) -> int:
        """An fd of the folder ``path`` (plain names, no links), made when ``create``."""
        fd = os.open(self.path, _DIR_FLAGS)
        try:
            for name in self.split(path):
                if name == "..":
                    raise self.escape(path)
                if create:
                    try:
                        os.mkdir(name, 0o700, dir_fd=fd)
                    except FileExistsError:
                        pass
                nxt = self._open_dir(name, fd, path)
                os.close(fd)
                fd = nxt
            return fd
        except BaseException:
            os.close(fd)
            raise


def write_file(dir_fd: int, name: str, data: bytes | BinaryIO) -> None:
    """Atomically write ``name`` inside the folder ``dir_fd``: a temporary file, fsync,
    rename over the old one. A symlink or folder already at ``name`` is replaced, never
    written through. ``data`` may be a binary file, copied from where it stands (an
    upload that was streamed to disk is never all in memory)."""
    if not name or "/" in name or name in (".", ".."):
        raise ConfinedError(f"bad file name {name!r}")
    tmp = f".{name}.{os.getpid()}.{os.urandom(4).hex()}.part"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as fh:
            if isinstance(data, (bytes, bytearray, memoryview)):
                fh.write(data)
            else:
                shutil.copyfileobj(data, fh, 1 << 20)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise ConfinedError(f"{name!r} is a folder; choose another file name")
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        raise


def _inside(target: str, root: Path) -> bool:
    p = os.path.normpath(target)
    r = str(root)
    return p == r or p.startswith(r.rstrip("/") + "/")
