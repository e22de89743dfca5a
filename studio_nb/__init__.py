"""studio-nb: SAGE Studio rebuilt Jupyter-first.

Importing this package is cheap on purpose (a notebook loads it with ``%load_ext``):
heavy parts are imported on first use through ``__getattr__``.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["ChatPanel", "Operator", "Pipeline", "create_studio_pipeline", "diff", "load_ipython_extension"]

_LAZY = {
    "create_studio_pipeline": "studio_nb.studio",
    "diff": "studio_nb.debug.diff",
    "ChatPanel": "studio_nb.notebook",
    "Operator": "studio_nb.kernel",
    "Pipeline": "studio_nb.kernel",
}


def load_ipython_extension(ipython):  # ``%load_ext studio_nb``
    from studio_nb.notebook import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython):
    from studio_nb.notebook import unload_ipython_extension as unload

    unload(ipython)


def _response_markdown(response):
    from studio_nb import present

    return present.markdown(response)


def _show_responses_in_ipython() -> None:
    """In IPython, display a ``Response`` (``pipe.chat(...)``) as its Markdown rendering.

    Registered here, by name, so the message module never imports its renderer.
    """
    import sys

    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None:
        formatter = shell.display_formatter.formatters["text/markdown"]
        formatter.for_type_by_name("studio_nb.messages", "Response", _response_markdown)


_show_responses_in_ipython()


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'studio_nb' has no attribute {name!r}")

