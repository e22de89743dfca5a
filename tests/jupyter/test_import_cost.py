"""Importing the extension (what Jupyter does at start) must not pull in the model stack."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "llama_cpp", "sentence_transformers", "hnswlib", "transformers")

CODE = """
import json, sys
import jupyter_ext
points = jupyter_ext._jupyter_server_extension_points()
import jupyter_ext.ws_chat, jupyter_ext.rest, jupyter_ext.page
print(json.dumps({"app": points[0]["app"].__name__, "heavy": sorted(m for m in %r if m in sys.modules)}))
""" % (HEAVY,)


def test_import_does_not_load_models():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"app": "StudioExtension", "heavy": []}
