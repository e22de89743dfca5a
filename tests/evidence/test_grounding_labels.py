"""The grounding check against the labelled synthesis sentences, as ``make bench`` measures it.

``bench/grounding.py`` runs the check of the answer path on every sentence of
``bench/grounding_labels.jsonl`` (sentences the bundled model wrote, each labelled supported or
unsupported by reading its evidence; no model runs here). The issue's goals hold on the whole
set and on the held-out part: of the sentences kept, >= 95 % supported; of the unsupported
ones, >= 80 % dropped. ``$STUDIO_NB_BENCH_RESULTS`` keeps the run away from measured results.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_check_meets_its_goals_on_the_labelled_sentences(tmp_path: Path) -> None:
    env = dict(os.environ, STUDIO_NB_BENCH_RESULTS=str(tmp_path))
    proc = subprocess.run([sys.executable, "bench/grounding.py"], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    figures = {f["name"]: f for f in json.loads((tmp_path / "grounding.json").read_text())["figures"]}
    for part in ("", "_heldout"):
        for goal in ("grounding_kept_supported", "grounding_unsupported_dropped"):
            assert figures[goal + part]["met"] is True, figures[goal + part]
    assert (tmp_path / "grounding.md").read_text().count("| answer path |") >= 3
