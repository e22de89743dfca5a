"""The two retrieval question sets, in one shape: ``{"q", "lang", "relevant"}``.

- ``own``: bench/questions_retrieval.yaml (84 questions written by reading the corpus);
- ``foreign_dev``: ../shared/eval/foreign_dev.jsonl (31 questions written outside the
  team; its ``relevant`` paths), when the file is there.

``relevant`` paths are relative to ../shared/data (``sage_docs/...``, ``sage_examples/...``).
"""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OWN = REPO / "bench" / "questions_retrieval.yaml"
FOREIGN = (REPO / ".." / "shared" / "eval" / "foreign_dev.jsonl").resolve()


def question_sets() -> dict[str, list[dict]]:
    import yaml

    own = yaml.safe_load(OWN.read_text(encoding="utf-8"))["questions"]
    sets = {"own": [{"q": q["q"], "lang": q["lang"], "relevant": q["relevant"]} for q in own]}
    if FOREIGN.is_file():
        lines = [line for line in FOREIGN.read_text(encoding="utf-8").splitlines() if line.strip()]
        sets["foreign_dev"] = [{"q": j["question"], "lang": j["lang"], "relevant": j["relevant"]}
                               for j in map(json.loads, lines)]
    return sets
