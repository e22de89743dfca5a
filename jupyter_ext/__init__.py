"""studio-nb's Jupyter server extension: the Studio chat WebSocket, REST API and web page.

Importing this package is cheap on purpose: Jupyter imports every enabled extension when
the server starts, so the application class (and through it tornado handlers and the
pipeline) is only imported when the server asks for the extension points.
"""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from jupyter_ext.app import StudioExtension

    return [{"module": "jupyter_ext.app", "app": StudioExtension}]
