"""The kernel benchmark runs as ``make bench`` runs it and reports its figures.

A smoke run with tiny settings (a few hundred requests): it checks that the script works
and writes the figure shape ``bench/run_all.py`` collects — not the figures themselves,
which are only measured in ``make bench``. ``$STUDIO_NB_BENCH_RESULTS`` keeps it away from
the measured results in ``bench/results/``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_kernel_overhead_bench_writes_its_figures(tmp_path: Path) -> None:
    env = dict(os.environ, STUDIO_NB_BENCH_RESULTS=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, "bench/kernel_overhead.py", "--requests", "200", "--rounds", "1"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    figures = {f["name"]: f for f in json.loads((tmp_path / "kernel_overhead.json").read_text())["figures"]}
    assert set(figures) == {"kernel_hop_overhead", "load_ext"}
    for fig in figures.values():
        assert set(fig) >= {"name", "value", "unit", "baseline", "ratio", "goal", "met"}
        assert fig["value"] > 0
