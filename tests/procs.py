"""A child process a test starts: one way to start it, wait for it, read its log, stop it.

Servers started by tests bind 127.0.0.1 port 0 themselves and announce the port on stdout
(``announce``), or are handed a listening socket (``pass_fds``): nothing picks a free port
and releases it for someone else to take. Everything the child writes goes to ``log``, and
every error says where the child stands and ends with the log's tail.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence


class Child:
    """``Child(cmd, log=path, name="jupyter server", announce="STUDIO_TEST_PORT ").start()``."""

    def __init__(self, cmd: Sequence[str], *, log: Path, name: str, env: dict[str, str] | None = None,
                 cwd: Path | None = None, pass_fds: Sequence[int] = (), announce: str | None = None) -> None:
        self.cmd, self.log_path, self.name = list(cmd), Path(log), name
        self.env, self.cwd, self.pass_fds, self.announce = env, cwd, tuple(pass_fds), announce
        self.announced: str | None = None  # the rest of the line that started with ``announce``
        self.proc: subprocess.Popen | None = None
        self._log: Any = None

    def start(self) -> "Child":
        """Start it; with ``announce``, return once it printed that line (or raise if it exited)."""
        self._log = open(self.log_path, "a")
        self.proc = subprocess.Popen(self.cmd, cwd=self.cwd, env=self.env, pass_fds=self.pass_fds, text=True,
                                     stdout=subprocess.PIPE if self.announce else self._log, stderr=self._log)
        if self.announce:
            for line in self.proc.stdout:  # blocks until the line comes (or the child exits)
                if line.startswith(self.announce):
                    self.announced = line[len(self.announce):].strip()
                    break
            else:
                self.proc.wait()
                raise RuntimeError(self._why(f"exited with {self.proc.returncode} before announcing itself"))
            threading.Thread(target=self._drain, daemon=True).start()  # a full pipe must never block it
        return self

    def _drain(self) -> None:
        for line in self.proc.stdout:
            try:
                self._log.write(line)
            except ValueError:  # stopped: the log is closed, what is left is not needed
                return

    def wait_until(self, ready: Callable[[], Any], timeout: float, what: str, every: float = 0.5) -> Any:
        """Call ``ready()`` until it returns something true (connection errors count as "not
        yet"); raise if the child exits first or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(self._why(f"exited with {self.proc.returncode} while waiting until {what}"))
            try:
                value = ready()
                if value:
                    return value
            except (OSError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(self._why(f"did not get to {what} in {timeout:.0f} s"))
            time.sleep(every)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, chars: int = 3000) -> str:
        """The end of the child's log."""
        if self._log is not None and not self._log.closed:
            self._log.flush()
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def _why(self, what: str) -> str:
        return f"{self.name} {what}; log {self.log_path}:\n{self.tail()}"

    def kill9(self) -> None:
        """SIGKILL: no handler, no flush, no goodbye; the process is gone when this returns."""
        self.proc.kill()
        self.proc.wait()
        self._close_log()

    def stop(self, grace: float = 20) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; safe to call twice."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None and not self._log.closed:
            self._log.close()

    def __enter__(self) -> "Child":
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
