"""studio-nb: SAGE Studio rebuilt Jupyter-first.

Importing this package is cheap on purpose (a notebook loads it with ``%load_ext``):
heavy parts are imported on first use through ``__getattr__``.
"""

from __future__ import annotations

__version__ = "0.1.0"
