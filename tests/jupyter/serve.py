"""``python -m tests.jupyter.serve --config=FILE``: a Jupyter server on a port the OS picks.

Jupyter's own ``port=0`` binds a probe socket, closes it and binds again later, which can
race with another process. Here the listening socket is bound once, on port 0, inside
this process, and the port it got is printed on stdout (``STUDIO_TEST_PORT <n>``) only
once the server is listening, so the parent needs no retry loop and no sleep.
"""

from __future__ import annotations

from jupyter_ext.fast_start import skip_unused_iri_checker

skip_unused_iri_checker()  # as `studio-nb serve` does, before Jupyter is imported

from jupyter_server.serverapp import ServerApp  # noqa: E402
from tornado.netutil import bind_sockets  # noqa: E402


class Port0ServerApp(ServerApp):
    def _find_http_port(self) -> None:  # no probing: the socket is bound once, below
        pass

    def _bind_http_server_tcp(self) -> bool:
        sockets = bind_sockets(0, self.ip)
        self.http_server.add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]
        print(f"STUDIO_TEST_PORT {self.port}", flush=True)
        return True


if __name__ == "__main__":
    Port0ServerApp.launch_instance()
