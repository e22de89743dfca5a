"""Keep one unused JSON-schema format checker out of the Jupyter server's start-up.

Importing ``jupyter_server.serverapp`` imports ``jupyter_events``, whose validators
import ``jsonschema``'s format checkers; with ``jsonschema[format-nongpl]`` installed
(nbformat asks for it) that imports ``rfc3987_syntax``, which compiles ~35 Lark parsers
at import time only to check the ``iri`` and ``iri-reference`` formats. No schema that
Jupyter Server, JupyterLab, jupyter_events or nbformat ships uses those formats, yet on
this project's 2-core machine the import took 2.7-3.0 s of a 4.1 s
``import jupyter_server.serverapp`` (1.1 s without it, same machine, same minute). Known
upstream: jupyter-server/jupyter_server#1559 and python-jsonschema/jsonschema#1428.

:func:`skip_unused_iri_checker` makes that one import fail fast, as if the optional
package were absent (jsonschema then leaves those two formats unchecked, exactly as it
does without the extra). It only acts in the processes studio-nb launches itself
(``studio-nb serve`` / ``make run`` and the test server), before Jupyter is imported; a
process that already imported the package, or that asks for it by setting
``STUDIO_NB_KEEP_IRI_CHECKER=1``, is left alone.
"""

from __future__ import annotations

import os
import sys

MODULE = "rfc3987_syntax"


def skip_unused_iri_checker() -> bool:
    """Block the slow IRI checker's import in this process; True when it was blocked."""
    if os.environ.get("STUDIO_NB_KEEP_IRI_CHECKER") == "1" or MODULE in sys.modules:
        return False
    sys.modules[MODULE] = None  # type: ignore[assignment]  # an import of it raises ImportError
    return True
