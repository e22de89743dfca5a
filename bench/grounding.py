"""How well the grounding check tells supported synthesis sentences from unsupported ones.

``bench/grounding_labels.jsonl`` holds sentences the bundled model really wrote as grounded
syntheses (English and Chinese questions of the project's tune split and of
``foreign_dev.jsonl``), each with the evidence pieces it was written from and a label given
by reading them: ``supported`` (every claim of the sentence is said by the evidence) or
``unsupported``. Reported for the check of the answer path and for the bag-of-words check it
replaced (all terms of the sentence somewhere in the evidence, pooled):

- **kept supported**: of the sentences the check keeps, the share labelled supported
  (precision; goal >= 0.95);
- **unsupported dropped**: of the sentences labelled unsupported, the share the check drops
  (recall; goal >= 0.8);
- supported sentences dropped (what the strictness costs).

``--collect`` answers the questions with a synthesis in both languages and writes every
generated sentence with its evidence to ``bench/results/grounding_candidates.jsonl`` for
labelling (the labels themselves are written by a person, not by this script).

    .venv/bin/python bench/grounding.py [--collect]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
LABELS = ROOT / "bench" / "grounding_labels.jsonl"
RESULTS = ROOT / "bench" / "results"


def bag_of_words_keeps(sentence: str, evidence: list[str], question: str) -> bool:
    """The check before order and pieces: claims and 70 % (CJK 80 %) of the terms, pooled."""
    from studio_nb.services.evidence.grounding import GroundingChecker, _found
    from studio_nb.services.text import cjk_share, folded, terms

    source = folded("\n".join(evidence) + "\n" + question)
    known = set(terms("\n".join(evidence) + "\n" + question))
    own = set(terms(sentence))
    if not own:
        return False
    if any(not _found(c, source) for c in GroundingChecker().claims(sentence)):
        return False
    return len(own & known) / len(own) >= (0.8 if cjk_share(sentence) > 0.3 else 0.7)


def path_keeps(sentence: str, evidence: list[str], question: str) -> bool:
    from studio_nb.services.evidence.grounding import GroundingChecker

    verdicts = GroundingChecker().check(sentence, evidence, question)
    return bool(verdicts) and all(v.kept or v.filler for v in verdicts) and any(v.kept for v in verdicts)


def measure(rows: list[dict], keeps) -> dict:
    kept = [r for r in rows if keeps(r["sentence"], r["evidence"], r["question"])]
    unsupported = [r for r in rows if r["label"] == "unsupported"]
    supported = [r for r in rows if r["label"] == "supported"]
    kept_ids = {id(r) for r in kept}
    return {
        "sentences": len(rows),
        "supported": len(supported),
        "unsupported": len(unsupported),
        "kept": len(kept),
        "kept_supported": (sum(r["label"] == "supported" for r in kept) / len(kept)) if kept else float("nan"),
        "unsupported_dropped": (sum(id(r) not in kept_ids for r in unsupported) / len(unsupported))
        if unsupported else float("nan"),
        "supported_dropped": (sum(id(r) not in kept_ids for r in supported) / len(supported))
        if supported else float("nan"),
    }


def collect(out: Path, data_dir: Path, **overrides) -> None:
    """Every synthesis sentence the model writes for the tune and foreign_dev questions, with its evidence."""
    import yaml

    from answers import FOREIGN, QUESTIONS, _jsonl, ensure_corpus
    from studio_nb import create_studio_pipeline
    from studio_nb.services.evidence.grounding import split_sentences

    qs = [q for q in yaml.safe_load(QUESTIONS.read_text(encoding="utf-8"))["questions"] if q["split"] == "tune"]
    qs += _jsonl(FOREIGN)
    ensure_corpus("own", data_dir)
    pipe = create_studio_pipeline(data_dir=str(data_dir), synthesis_languages=["en", "zh"], **overrides)
    pipe.warm_up()
    with out.open("w", encoding="utf-8") as fh:
        for q in qs:
            turn = pipe.ask(q["q"], session_id=f"ground-{q['id']}-{time.time_ns()}")
            turn.wait()
            resp = turn.response
            if resp is None or not resp.evidence:
                continue
            sentences = (split_sentences(resp.synthesis) if resp.synthesis else []) + [d.text for d in resp.dropped]
            for s in sentences:
                fh.write(json.dumps({"id": q["id"], "lang": q["lang"], "question": q["q"], "sentence": s,
                                     "evidence": resp.evidence.texts}, ensure_ascii=False) + "\n")
            print(f"{q['id']}: {len(sentences)} sentences", file=sys.stderr)
    pipe.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--collect", action="store_true")
    ap.add_argument("--data-dir", type=Path, default=RESULTS / "answers-data" / "sage")
    ap.add_argument("--temperature", type=float, default=0.0, help="with --collect: sample, for more varied sentences")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS / "grounding_candidates.jsonl")
    args = ap.parse_args()
    if args.collect:
        RESULTS.mkdir(parents=True, exist_ok=True)
        collect(args.out, args.data_dir, temperature=args.temperature, seed=args.seed)
        return 0
    from figures import figure, save

    rows = [json.loads(line) for line in LABELS.read_text(encoding="utf-8").splitlines() if line.strip()]
    report = {}
    for name, keeps in (("answer path (per piece, in order)", path_keeps), ("bag of words, pooled", bag_of_words_keeps)):
        report[name] = {lang: measure([r for r in rows if lang == "all" or r["lang"] == lang], keeps)
                        for lang in ("en", "zh", "all")}
    lines = ["| check | lang | sentences (supported / unsupported) | kept | kept supported | unsupported dropped "
             "| supported dropped |", "|---|---|---:|---:|---:|---:|---:|"]
    for name, per_lang in report.items():
        for lang, m in per_lang.items():
            lines.append(f"| {name} | {lang} | {m['sentences']} ({m['supported']} / {m['unsupported']}) | {m['kept']} | "
                         f"{m['kept_supported']:.2f} | {m['unsupported_dropped']:.2f} | {m['supported_dropped']:.2f} |")
    print("\n".join(lines))
    ours = report["answer path (per piece, in order)"]["all"]
    base = report["bag of words, pooled"]["all"]
    figures = [
        figure("grounding_kept_supported", ours["kept_supported"], "share", baseline=base["kept_supported"],
               goal=">= 0.95", note=f"of {ours['kept']} kept of {ours['sentences']} labelled sentences"),
        figure("grounding_unsupported_dropped", ours["unsupported_dropped"], "share",
               baseline=base["unsupported_dropped"], goal=">= 0.8", note=f"of {ours['unsupported']} unsupported"),
        figure("grounding_supported_dropped", ours["supported_dropped"], "share", baseline=base["supported_dropped"],
               note=f"of {ours['supported']} supported"),
    ]
    save("grounding", figures, {"report": report})
    (RESULTS / "grounding.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
