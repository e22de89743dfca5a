"""What the benchmarks in this folder share: offline settings, the repository on
``sys.path`` (import it first), the corpus location, and the process's memory."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
#: the real corpus (sage_docs/, sage_examples/), a sibling of the checkout
DATA = (REPO / ".." / "shared" / "data").resolve()


def rss_mb() -> float:
    """This process's resident memory, in MB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")
