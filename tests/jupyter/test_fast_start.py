"""The launchers keep jsonschema's unused IRI checker out of the server's start-up.

Each case runs in a fresh interpreter, because what is measured is what a process imports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.jupyter.server_proc import REPO


def _run(code: str, **env: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180,
                         check=True, cwd=REPO, env={**os.environ, **env})
    return json.loads(out.stdout.strip().splitlines()[-1])


SERVER_AFTER_SKIP = """
import json, sys
from jupyter_ext.fast_start import skip_unused_iri_checker
blocked = skip_unused_iri_checker()
import jupyter_server.serverapp
from jsonschema import Draft7Validator
checkers = Draft7Validator.FORMAT_CHECKER.checkers
print(json.dumps({"blocked": blocked, "loaded": sys.modules.get("rfc3987_syntax") is not None,
                  "iri": "iri" in checkers, "uri": "uri" in checkers, "date-time": "date-time" in checkers}))
"""


def test_skipped_before_jupyter_is_imported():
    got = _run(SERVER_AFTER_SKIP)
    # only the two IRI formats go; the URI and date-time checkers Jupyter's schemas use stay
    assert got == {"blocked": True, "loaded": False, "iri": False, "uri": True, "date-time": True}


def test_opt_out_keeps_the_checker():
    got = _run(SERVER_AFTER_SKIP, STUDIO_NB_KEEP_IRI_CHECKER="1")
    assert got["blocked"] is False and got["loaded"] is True and got["iri"] is True


def test_jupyter_events_still_validate():
    """An event that breaks jupyter_server's own schema is still refused with the checker skipped."""
    got = _run("""
import json, logging
from jupyter_ext.fast_start import skip_unused_iri_checker
skip_unused_iri_checker()
from jupyter_events import EventLogger
from jupyter_server.serverapp import ServerApp
import jupyter_server, pathlib
schema = pathlib.Path(jupyter_server.__file__).parent / "event_schemas" / "contents_service" / "v1.yaml"
log = EventLogger(handlers=[logging.NullHandler()])
log.register_event_schema(schema)
sid = log.schemas.schema_ids[0]
log.emit(schema_id=sid, data={"action": "get", "path": "a.ipynb"})
try:
    log.emit(schema_id=sid, data={"action": "not-an-action", "path": "a.ipynb"})
    refused = False
except Exception as exc:
    refused = type(exc).__name__
print(json.dumps({"refused": refused}))
""")
    assert got["refused"] == "ValidationError"


CLI_IMPORTS = """
import json, sys
import studio_nb.cli, jupyter_ext.launch
print(json.dumps({"mods": sorted(m for m in ("jupyter_server", "jsonschema", "rfc3987_syntax") if m in sys.modules)}))
"""


def test_the_cli_imports_no_jupyter_before_serve():
    """`studio-nb` must not import Jupyter at module level, or the skip would come too late."""
    assert _run(CLI_IMPORTS) == {"mods": []}
