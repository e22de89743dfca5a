"""Owner-only files: the one rule for everything studio-nb keeps in its data dir.

The data dir holds what users said and uploaded: ``memory.sqlite3`` (every question and
answer, with its WAL), each knowledge domain's chunk store and vector index (an upload's
text), the uploads themselves and caches. On a machine with other local accounts none of
it may be readable by them, whatever the umask: folders are made 0700, files 0600.

Why not set the umask: it is per process, and a Jupyter server also writes the user's
notebooks, which must keep the modes the user expects. So each place that creates
something in the data dir asks here instead:

* :func:`make_dir` creates a folder (and missing parents) 0700;
* :func:`sqlite_file` creates a database file 0600 before SQLite opens it — SQLite gives
  its ``-wal``, ``-shm`` and ``-journal`` files the mode of the database file, so they are
  born owner-only too;
* :func:`write_file` writes a small file 0600; :func:`restrict` closes a file another
  library wrote (hnswlib's index, numpy's cache) before it is renamed into place.

A data dir made by an older studio-nb (0755 folders, 0644 files) is tightened by
:func:`secure_data_dir` when a pipeline first uses it, and the log says what changed. The
0700 data dir alone already keeps other users out (they cannot enter it); the file modes
keep them out too when a folder is copied or its mode is loosened by hand.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from pathlib import Path

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600
#: the folders of a data dir, made owner-only up front so that code which creates them
#: with a plain ``mkdir`` (an upload's folder, a cache) finds them already private
DATA_DIR_FOLDERS = ("knowledge", "uploads", "cache")
_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")

_secured: set[str] = set()
_secured_lock = threading.Lock()


def make_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` and its missing parents owner-only (an existing folder is left as it is)."""
    path = Path(path)
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for p in reversed(missing):
        try:
            os.mkdir(p, DIR_MODE)  # 0700 & ~umask is 0700 for any usual umask
        except FileExistsError:
            pass  # made by another thread or process meanwhile
    return path


def restrict(path: str | os.PathLike) -> None:
    """Remove the group's and others' bits from ``path`` (no-op when already owner-only)."""
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & 0o077:
        os.chmod(path, mode & ~0o077)


def sqlite_file(path: str | os.PathLike) -> Path:
    """Make sure the database file ``path`` exists owner-only before SQLite opens it.

    An empty file is a valid empty database. Existing side files (``-wal``, ``-shm``) left
    by an older version are tightened too, since SQLite reuses them as they are.
    """
    path = Path(path)
    make_dir(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE))
    except FileExistsError:
        restrict(path)
    for suffix in _SQLITE_SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            restrict(side)
    return path


def write_file(path: str | os.PathLike, data: str | bytes) -> None:
    """Write ``data`` to ``path`` (created or truncated) with mode 0600."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # a file that existed keeps its mode through O_CREAT
        with os.fdopen(fd, "wb", closefd=False) as fh:
            fh.write(raw)
    finally:
        os.close(fd)


def tighten_tree(root: str | os.PathLike) -> list[str]:
    """Make every folder and file under ``root`` (and ``root``) owner-only; returns what changed.

    Links are not followed (a link's target is not ours to change) and entries owned by
    another uid are left alone (chmod would fail; they are reported in the log).
    """
    root = Path(root)
    changed: list[str] = []
    uid = os.getuid()

    def fix(p: str, st: os.stat_result) -> None:
        mode = stat.S_IMODE(st.st_mode)
        if not mode & 0o077:
            return
        if st.st_uid != uid:
            log.warning("%s belongs to uid %d, not to this user: its mode %o is left as it is", p, st.st_uid, mode)
            return
        os.chmod(p, mode & ~0o077)
        changed.append(p)

    def walk(p: str) -> None:
        st = os.lstat(p)
        if stat.S_ISLNK(st.st_mode):
            return
        fix(p, st)
        if stat.S_ISDIR(st.st_mode):
            with os.scandir(p) as entries:
                for entry in entries:
                    walk(entry.path)

    walk(str(root))
    return changed


def secure_data_dir(data_dir: str | os.PathLike) -> Path:
    """Create ``data_dir`` and its folders owner-only, or tighten an existing one (logged).

    Runs once per data dir and process (the walk touches every file, so it is not repeated
    for every pipeline a notebook builds).
    """
    path = Path(data_dir).expanduser()
    key = os.path.realpath(path)
    with _secured_lock:
        if key in _secured:
            return path
        existed = path.exists()
        make_dir(path)
        if existed:
            changed = tighten_tree(path)
            if changed:
                log.warning("studio-nb data dir %s was readable by other local users: made %d folders and files "
                            "owner-only (folders 0700, files 0600), e.g. %s", path, len(changed),
                            ", ".join(os.path.relpath(c, path) for c in changed[:3]))
        for name in DATA_DIR_FOLDERS:
            make_dir(path / name)
        _secured.add(key)
    return path


__all__ = ["DATA_DIR_FOLDERS", "DIR_MODE", "FILE_MODE", "make_dir", "restrict", "secure_data_dir", "sqlite_file",
           "tighten_tree", "write_file"]
