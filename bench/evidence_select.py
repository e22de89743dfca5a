"""How much of what retrieval found the evidence selector shows, without the model, in seconds.

``bench/answers.py`` measures whole answers (the model included: minutes per set). Tuning
the evidence selector needs a quicker loop: this script asks every question once through
the real pipeline in ``extractive`` mode (routing and hybrid retrieval as in an answer, no
LLM) and caches the retrieved chunks, then re-runs only the selector on them and scores,
per set and language, with ``bench/facts.py``:

- **evidence**: fact coverage of the pieces as the answer shows them (``[n] text`` lines,
  their first 1,000 characters);
- **top-5**: fact coverage of the five retrieved chunks, whole;
- **evidence / top-5**: the ratio ``bench/answers.py`` reports as ``evidence_vs_top5``.

Sets as in ``bench/answers.py``: ``own`` (the ``--split``; keep ``heldout`` for the end:
it must not be looked at while tuning), ``foreign``, ``hanlp``. ``--set NAME=VALUE``
overrides an ``EvidenceSelector`` attribute; ``--show ID`` prints a question's evidence.

    .venv/bin/python bench/evidence_select.py [--sets foreign,hanlp] [--split tune] [--refresh]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from answers import RESULTS, TOP, ensure_corpus, load_sets  # noqa: E402
from facts import coverage  # noqa: E402


def retrieve(set_name: str, questions: list[dict], data_dir: Path) -> list[dict]:
    """Each question with the intent, confidence and chunks the pipeline retrieved for it."""
    from studio_nb import create_studio_pipeline

    ensure_corpus(set_name, data_dir)
    pipe = create_studio_pipeline(data_dir=str(data_dir), answer_mode="extractive")
    pipe.warm_up()
    out = []
    for q in questions:
        turn = pipe.ask(q["q"], session_id=f"evsel-{set_name}-{q['id']}")
        turn.wait()
        r = turn.response
        docs = [{"domain": s.domain, "path": s.path, "heading": s.heading, "start_line": s.start_line,
                 "end_line": s.end_line, "text": s.text} for s in r.sources]
        out.append({**q, "intent": r.intent, "confidence": r.confidence, "docs": docs})
    pipe.close()
    return out


def cached(set_name: str, questions: list[dict], split: str, refresh: bool) -> list[dict]:
    path = RESULTS / f"evidence_select-{set_name}-{split if set_name == 'own' else 'all'}.json"
    if path.is_file() and not refresh:
        return json.loads(path.read_text(encoding="utf-8"))
    rows = retrieve(set_name, questions, RESULTS / "answers-data" / ("hanlp" if set_name == "hanlp" else "sage"))
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    return rows


def shown(row: dict, selector, floor_of) -> str:
    """The evidence as the answer shows it: ``[n] text`` lines of the pieces above the floor."""
    from studio_nb.citation import Citation
    from studio_nb.messages import Evidence, EvidencePiece, compose_answer

    docs = [SimpleNamespace(**d) for d in row["docs"]]
    floor = floor_of(row["intent"], row["confidence"])
    picked = [s for s in selector.select(row["q"], docs) if s.score >= floor]
    pieces = tuple(
        EvidencePiece(n, s.text, Citation(docs[s.doc].path, s.start_line, s.end_line, domain=docs[s.doc].domain))
        for n, s in enumerate(picked, 1)
    )
    return compose_answer(Evidence(pieces), question=row["q"], refs=False)  # as bench/answers.py scores it


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default="own,foreign,hanlp")
    ap.add_argument("--split", default="tune", choices=["heldout", "tune", "all"], help="of the own set")
    ap.add_argument("--refresh", action="store_true", help="retrieve again (after a change to retrieval)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a selector attribute")
    ap.add_argument("--show", action="append", default=[], metavar="ID", help="print this question's evidence")
    ap.add_argument("--misses", action="store_true", help="list questions whose evidence holds less than the top 5")
    args = ap.parse_args()

    from studio_nb.operators.evidence import EvidenceOp
    from studio_nb.services.evidence import EvidenceSelector

    selector = EvidenceSelector()
    for item in args.set:
        name, _, value = item.partition("=")
        if not hasattr(selector, name):
            raise SystemExit(f"EvidenceSelector has no attribute {name!r}")
        setattr(selector, name, json.loads(value))
    floor_of = EvidenceOp().floor
    for set_name, questions in load_sets(args.sets.split(","), args.split).items():
        rows = cached(set_name, questions, args.split, args.refresh)
        for lang in ("en", "zh"):
            ev, top, chars = [], [], []
            for row in (r for r in rows if r["lang"] == lang):
                text = shown(row, selector, floor_of)
                top5 = "\n".join(d["text"] for d in row["docs"][:TOP])
                ev.append(coverage(text, row["facts"]))
                top.append(coverage(top5, row["facts"], window=len(top5) + 1))
                chars.append(len(text))
                if args.misses and ev[-1] < top[-1]:
                    print(f"  miss {row['id']} {ev[-1]:.2f} < {top[-1]:.2f}: {row['q']}")
                if row["id"] in args.show:
                    print(f"--- {row['id']} ({row['intent']}) {row['q']}\nfacts: {row['facts']}\n{text}\n")
            if ev:
                e, t = statistics.mean(ev), statistics.mean(top)
                print(f"{set_name:8} {lang}  n={len(ev):2}  evidence {e:.2f}  top-5 {t:.2f}  "
                      f"evidence/top-5 {e / t if t else float('nan'):.2f}  chars median {statistics.median(chars):.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
