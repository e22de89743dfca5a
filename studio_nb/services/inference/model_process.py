"""Where a user's model process lives, and how front ends find, start, share and stop it.

There is one model process (``model_server.py``) per user, data dir and model settings:
its key hashes the uid, the real path of the data dir, the ``LlamaCppClient`` settings and
the protocol version, so the Jupyter server, the notebook kernels and the CLI of one user
on one data dir compute the same key and share one loaded model (DESIGN §6).

Its files lie in one private runtime folder, ``$STUDIO_NB_RUNTIME_DIR`` or
``/tmp/studio-nb-<uid>`` (created 0700; refused if it is not the user's own and private):

=====================  ===============================================================
``model-<key>.sock``   the Unix socket, 0600, bound only once the model has loaded
``model-<key>.token``  the bearer token every request carries, 0600
``model-<key>.json``   pid, settings and data dir (``model_processes()``, debugging)
``model-<key>.log``    the process's stderr: why it could not load, what it said last
``model-<key>.lock``   ``flock``-ed exclusively by the one front end starting it
``model-<key>.users``  ``flock``-ed shared by every front end using it
=====================  ===============================================================

Not ``$XDG_RUNTIME_DIR``: a Jupyter server started by a service manager and a terminal's
CLI see different values and would load two models. Not under the data dir: a socket path
must fit in 107 bytes, and a data dir on a network file system is seen by other machines.

Starting: under the ``.lock``, a front end checks that nobody listens, removes a stale
socket and spawns the server with a pipe on which it writes one JSON line when it serves
(or the error, with its ``StudioError`` code), so the wait is one blocking read bounded by
``start_timeout_s``; a pipe that closes without a line means the process died, and its
exit status names the signal. The process runs in its own session: Ctrl-C in a terminal
or the end of the front end that started it does not stop it.

Sharing and stopping: every warm client holds a shared ``flock`` on ``.users``. ``detach``
releases it and then tries the exclusive lock without waiting: if it gets it, nobody else
uses the process and it is stopped (SIGTERM) right away. A front end that dies without
closing releases its lock with its last file descriptor; the server then exits by itself
after ``idle_timeout_s`` without a request (``$STUDIO_NB_MODEL_IDLE_S`` sets the default).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import select
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from studio_nb.errors import BudgetExceededError, ConfigError, ModelNotFoundError, StudioError
from studio_nb.services.inference.base import BackendTimeoutError, InferenceError, InvalidRequestError

PROTOCOL = 1
RUNTIME_ENV = "STUDIO_NB_RUNTIME_DIR"
IDLE_ENV = "STUDIO_NB_MODEL_IDLE_S"
DEFAULT_IDLE_S = 600.0
SOCKET_PATH_MAX = 107  # sun_path is 108 bytes on Linux, NUL included


class ModelCrashedError(InferenceError):
    """The model process died (or broke the connection) while it was needed."""

    code = "model_crashed"


def default_idle_timeout() -> float:
    try:
        return float(os.environ.get(IDLE_ENV) or DEFAULT_IDLE_S)
    except ValueError:
        raise ConfigError(f"${IDLE_ENV}={os.environ[IDLE_ENV]!r} is not a number of seconds") from None


def runtime_dir() -> Path:
    """The user's private folder for model process files (created 0700 on first use)."""
    base = os.environ.get(RUNTIME_ENV)
    path = Path(base).expanduser() if base else Path(f"/tmp/studio-nb-{os.getuid()}")
    if base:
        path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise ConfigError(
            f"{path} must be a folder owned by you (uid {os.getuid()}) that only you can open (mode 0700); "
            f"it is {'a folder' if stat.S_ISDIR(st.st_mode) else 'not a folder'} of uid {st.st_uid} with mode "
            f"{stat.S_IMODE(st.st_mode):o}; fix: remove it, or set ${RUNTIME_ENV} to a private folder"
        )
    return path


def process_key(spec: dict, data_dir: str) -> str:
    material = json.dumps(
        {"uid": os.getuid(), "data_dir": os.path.realpath(data_dir), "spec": spec, "protocol": PROTOCOL},
        sort_keys=True,
    )
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def studio_error(code: str, message: str) -> StudioError:
    """The error the in-process client would have raised for ``code`` (sent by the process)."""
    cls = {
        "too_long": BudgetExceededError,
        "bad_request": InvalidRequestError,
        "model_not_found": ModelNotFoundError,
        "bad_config": ConfigError,
        "model_crashed": ModelCrashedError,
    }.get(code)
    return cls(message) if cls is not None else InferenceError(message, code=code)


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "it is gone; its exit status is known only to the front end that started it"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


# ------------------------------------------------------------------ children of this process
class _Child:
    """A model process this front end started: a thread waits for its exit (no zombie, and
    the exit status is known when a stream breaks)."""

    def __init__(self, popen: subprocess.Popen) -> None:
        self.popen = popen
        self.exited = threading.Event()
        threading.Thread(target=self._reap, name=f"model-process-{popen.pid}", daemon=True).start()

    def _reap(self) -> None:
        self.popen.wait()
        self.exited.set()


_children: dict[int, _Child] = {}


def wait_exit(pid: int, timeout: float) -> tuple[bool, int | None]:
    """Wait (bounded) for process ``pid`` to end: ``(ended, returncode or None if unknown)``."""
    child = _children.get(pid)
    if child is not None:
        ended = child.exited.wait(timeout)
        return ended, child.popen.returncode if ended else None
    try:
        fd = os.pidfd_open(pid)  # Linux >= 5.3: readable once the process has ended
    except ProcessLookupError:
        return True, None
    except (AttributeError, OSError):
        return False, None
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        return bool(ready), None
    finally:
        os.close(fd)


def _tail(path: Path, lines: int = 12) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def _read_line(fd: int, timeout: float) -> str | None:
    """One line from a pipe: '' at EOF, None after ``timeout`` seconds without it."""
    import time

    data, end = b"", time.monotonic() + timeout
    while b"\n" not in data:
        ready, _, _ = select.select([fd], [], [], max(0.0, end - time.monotonic()))
        if not ready:
            return None
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data.decode("utf-8", "replace").strip()


def _private_file(path: Path, mode: str = "a+b"):
    return os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT | (os.O_APPEND if "a" in mode else 0), 0o600), mode)


def _child_env() -> dict[str, str]:
    """The environment for the model process: this one, plus the folder this ``studio_nb``
    was imported from when it is not an installed copy, so the child runs the same code."""
    import site

    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[3])  # the folder holding studio_nb/
    installed = {str(Path(p).resolve()) for p in [*site.getsitepackages(), site.getusersitepackages()]}
    if root not in installed:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env


class ModelProcess:
    """The model process of one (user, data dir, model settings); see the module docstring."""

    def __init__(self, spec: dict, data_dir: str, *, idle_timeout_s: float, start_timeout_s: float) -> None:
        if os.name != "posix":
            raise ConfigError("llm isolation 'process' needs Unix sockets and flock; fix: set isolation 'inline'")
        self.spec = spec
        self.data_dir = str(data_dir)
        self.idle_timeout_s = idle_timeout_s
        self.start_timeout_s = start_timeout_s
        self.key = process_key(spec, self.data_dir)
        folder = runtime_dir()
        stem = folder / f"model-{self.key}"
        self.socket_path = str(stem) + ".sock"
        if len(self.socket_path.encode()) > SOCKET_PATH_MAX:
            raise ConfigError(
                f"the socket path {self.socket_path} is longer than {SOCKET_PATH_MAX} bytes; "
                f"fix: set ${RUNTIME_ENV} to a shorter private folder"
            )
        self.token_file, self.info_file, self.log_file, self.lock_file, self.users_file = (
            stem.with_suffix(s) for s in (".token", ".json", ".log", ".lock", ".users")
        )
        self._users = None  # the open .users file while attached

    def __repr__(self) -> str:
        return f"ModelProcess({self.key}, socket={self.socket_path!r})"

    # ------------------------------------------------------------------ finding
    def server_pid(self) -> int | None:
        """The pid of the process serving the socket, or None when nobody does."""
        return listener_pid(self.socket_path)

    def token(self) -> str:
        return self.token_file.read_text(encoding="utf-8").strip()

    def info(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.info_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    # ------------------------------------------------------------------ starting
    def ensure_running(self) -> int:
        """The pid of a serving process, started (once, whoever asks first) if none serves."""
        import fcntl

        pid = self.server_pid()
        if pid is not None:
            return pid
        with _private_file(self.lock_file) as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # another front end may be starting it right now
            pid = self.server_pid()
            return pid if pid is not None else self._spawn()

    def _spawn(self) -> int:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)  # stale: nobody listens on it
        with contextlib.suppress(OSError):
            if self.log_file.stat().st_size > 1 << 20:
                os.replace(self.log_file, self.log_file.with_suffix(".log.1"))
        cmd = [
            sys.executable, "-m", "studio_nb.services.inference.model_server",
            "--spec", json.dumps(self.spec), "--socket", self.socket_path, "--token-file", str(self.token_file),
            "--users-file", str(self.users_file), "--info-file", str(self.info_file), "--data-dir", self.data_dir,
            "--idle-timeout", repr(float(self.idle_timeout_s)),
        ]  # fmt: skip
        read_end, write_end = os.pipe()
        try:
            with _private_file(self.log_file, "ab") as log:
                # close_fds (the default) matters: the child must not hold this front end's locks
                popen = subprocess.Popen(
                    [*cmd, "--ready-fd", str(write_end)], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    pass_fds=(write_end,), start_new_session=True, cwd=str(runtime_dir()), env=_child_env(),
                )
        except OSError as exc:
            os.close(read_end)
            raise InferenceError(
                f"could not start the model process with {sys.executable} ({exc}); "
                "fix: check that interpreter, or set llm isolation 'inline'",
                code="model_process_failed",
            ) from exc
        finally:
            os.close(write_end)
        _children[popen.pid] = _Child(popen)
        try:
            line = _read_line(read_end, self.start_timeout_s)
        finally:
            os.close(read_end)
        model = self.spec.get("model_path")
        if line is None:
            popen.kill()
            raise BackendTimeoutError(
                f"the model process did not load {model} within {self.start_timeout_s:g} s; "
                f"fix: check its log {self.log_file}, or raise start_timeout_s"
            )
        if not line:  # the pipe closed without a word: the process died while loading
            _, code = wait_exit(popen.pid, 10)
            tail = _tail(self.log_file)
            raise ModelCrashedError(
                f"the model process died while loading {model} ({describe_exit(code)}); "
                "fix: run `python -m studio_nb.selftest` for a diagnosis (a SIGILL means llama.cpp was built "
                f"for another CPU), or set llm isolation 'inline' to see the error in this process. "
                f"Its log {self.log_file} ends with:\n{tail}"
            )
        msg = json.loads(line)
        if not msg.get("ok"):
            raise studio_error(msg.get("code", "model_process_failed"), msg.get("message", line))
        return int(msg["pid"])

    # ------------------------------------------------------------------ sharing and stopping
    def attach(self) -> None:
        """Mark this front end as a user of the process (waits while one is being stopped)."""
        import fcntl

        if self._users is None:
            users = _private_file(self.users_file)
            fcntl.flock(users.fileno(), fcntl.LOCK_SH)
            self._users = users

    def detach(self, *, stop_if_unused: bool = True) -> bool:
        """Stop using the process; stop it too if nobody else uses it. True if it was stopped."""
        import fcntl

        users, self._users = self._users, None
        if users is None:
            return False
        with users:
            fcntl.flock(users.fileno(), fcntl.LOCK_UN)
            if not stop_if_unused:
                return False
            try:
                fcntl.flock(users.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # another front end uses it (or the process is already stopping)
            return self.stop()  # holding the lock: nobody attaches while it goes

    def stop(self, timeout: float = 30) -> bool:
        """SIGTERM the serving process and wait (bounded) for it to end."""
        pid = self.server_pid()
        if pid == -1:  # the kernel could not say who listens: trust the info file
            pid = (self.info() or {}).get("pid")
        if not pid:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        return wait_exit(pid, timeout)[0]


def listener_pid(socket_path: str) -> int | None:
    """The pid of the process listening on ``socket_path`` (``SO_PEERCRED``; -1 where the
    kernel cannot say), or None when nobody listens."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        try:
            s.connect(socket_path)
        except OSError:  # no socket file, nobody listening, a full backlog
            return None
        opt = getattr(socket, "SO_PEERCRED", None)
        if opt is None:
            return -1
        pid, uid, _gid = struct.unpack("3i", s.getsockopt(socket.SOL_SOCKET, opt, struct.calcsize("3i")))
    if uid != os.getuid():
        raise ModelCrashedError(
            f"{socket_path} is served by uid {uid}, not by you; fix: remove {runtime_dir()} and retry"
        )
    return pid


def model_processes(data_dir: str | None = None) -> list[dict[str, Any]]:
    """The serving model processes of this user (their info files), optionally of one data dir."""
    out = []
    for info_file in sorted(runtime_dir().glob("model-*.json")):
        try:
            info = json.loads(info_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if data_dir is not None and os.path.realpath(info.get("data_dir") or "") != os.path.realpath(data_dir):
            continue
        if listener_pid(info["socket"]) in (info["pid"], -1):
            out.append(info)
    return out
