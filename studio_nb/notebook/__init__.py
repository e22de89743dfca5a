"""The notebook front end: ``%sage_chat``, ``ChatPanel``, rich reprs.

``%load_ext studio_nb`` calls ``load_ipython_extension`` below. This module imports
nothing but the standard library at import time so that loading the extension stays
fast; IPython, traitlets and ipywidgets are imported when they are first needed, and the
Studio pipeline (models, indexes) only when the first question is asked.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ChatPanel",
    "SearchResults",
    "compare_search",
    "kernel_pipeline",
    "load_ipython_extension",
    "operator_html",
    "unload_ipython_extension",
    "use_pipeline",
]

_LAZY = {
    "ChatPanel": "studio_nb.notebook.panel",
    "SearchResults": "studio_nb.notebook.reprs",
    "compare_search": "studio_nb.notebook.reprs",
    "operator_html": "studio_nb.notebook.reprs",
    "StudioMagics": "studio_nb.notebook.magics",
    "kernel_pipeline": "studio_nb.notebook.kernel_pipe",
    "use_pipeline": "studio_nb.notebook.kernel_pipe",
}


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%sage_chat`` / ``%%sage_chat`` and the HTML reprs (cheap: no models)."""
    from studio_nb.notebook.magics import StudioMagics, keep_question_marks
    from studio_nb.notebook.reprs import register_formatters

    ipython.register_magics(StudioMagics(shell=ipython))
    if keep_question_marks not in ipython.input_transformers_cleanup:
        ipython.input_transformers_cleanup.append(keep_question_marks)
    register_formatters(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Remove the HTML reprs and the input transformer (the magic itself stays registered)."""
    from studio_nb.notebook.magics import keep_question_marks
    from studio_nb.notebook.reprs import unregister_formatters

    unregister_formatters(ipython)
    if keep_question_marks in ipython.input_transformers_cleanup:
        ipython.input_transformers_cleanup.remove(keep_question_marks)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'studio_nb.notebook' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
