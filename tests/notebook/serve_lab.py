"""``python -m tests.notebook.serve_lab ...``: JupyterLab on a port the OS picks.

The same trick as ``tests/jupyter/serve.py``: the listening socket is bound once, on port 0,
inside the server process, and ``STUDIO_TEST_PORT <n>`` is printed once it listens.
"""

from __future__ import annotations

from tests.jupyter.serve import Port0ServerApp  # first: it keeps the IRI checker out, as `studio-nb serve` does

from jupyterlab.labapp import LabApp  # noqa: E402


class Port0LabApp(LabApp):
    serverapp_class = Port0ServerApp


if __name__ == "__main__":
    Port0LabApp.launch_instance()
