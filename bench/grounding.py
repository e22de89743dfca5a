"""How well the grounding check tells supported synthesis sentences from unsupported ones.

``bench/grounding_labels.jsonl`` holds sentences the bundled model really wrote as grounded
syntheses (English and Chinese questions of the project's tune split, of
``foreign_dev.jsonl`` and of the HanLP corpus), each with the evidence pieces it was written
from and a label given by reading them: ``supported`` (every claim of the sentence is said by
the evidence) or ``unsupported``. Rows with ``held_out: true`` were labelled (with a one-line
``reason``) before the check saw them; those also marked ``tuned_on: true`` had a draft's
errors on them read while the check was changed, the others nobody looked at while tuning:
they are reported apart from the sentences the check was tuned on. Reported for
the check of the answer path, for that check at an older revision (``--before REV``) and for
the bag-of-words check it replaced (all terms of the sentence somewhere in the evidence, pooled):

- **kept supported**: of the sentences the check keeps, the share labelled supported
  (precision; goal >= 0.95);
- **unsupported dropped**: of the sentences labelled unsupported, the share the check drops
  (recall; goal >= 0.8);
- supported sentences dropped (what the strictness costs);
- milliseconds per sentence (the check runs on every answer).

``--collect`` answers the questions of ``--sets`` with a synthesis in both languages and writes
every generated sentence with its evidence to ``bench/results/grounding_candidates.jsonl`` for
labelling (the labels themselves are written by a person, not by this script).

    .venv/bin/python bench/grounding.py [--before REV]
    .venv/bin/python bench/grounding.py --collect [--sets own,foreign,hanlp] [--temperature 0.7 --seed 17]
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


def path_keeps(sentence: str, evidence: list[str], question: str, checker=None) -> bool:
    """The answer path keeps the sentence: every part of it passes, and something does."""
    if checker is None:
        from studio_nb.services.evidence.grounding import GroundingChecker

        checker = GroundingChecker()
    verdicts = checker.check(sentence, evidence, question)
    return bool(verdicts) and all(v.kept or v.filler for v in verdicts) and any(v.kept for v in verdicts)


def checker_at(rev: str):
    """The grounding check as it was at git revision ``rev`` (loaded from ``git show``), so a
    before/after comparison runs in one process on the same labels."""
    import importlib.util
    import subprocess
    import tempfile

    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:studio_nb/services/evidence/grounding.py"],
                            check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "grounding_before.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("grounding_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module.GroundingChecker()


def subsets(rows: list[dict]) -> dict[str, list[dict]]:
    """All labelled sentences; those the check was tuned on (its errors on them were read while
    changing it); those labelled before the check saw them and never looked at while tuning
    (``held_out`` and not ``tuned_on``)."""
    return {"all": rows, "tuned on": [r for r in rows if not r.get("held_out") or r.get("tuned_on")],
            "held out": [r for r in rows if r.get("held_out") and not r.get("tuned_on")]}


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


def collect(out: Path, data_dir: Path, sets: list[str], **overrides) -> None:
    """Every synthesis sentence the model writes, in both languages, for the questions of ``sets``
    (the own set's tune split, foreign_dev, HanLP), with the evidence it was written from."""
    from answers import ensure_corpus, load_sets
    from studio_nb import create_studio_pipeline
    from studio_nb.services.evidence.grounding import split_sentences

    with out.open("w", encoding="utf-8") as fh:
        for set_name, qs in load_sets(sets, "tune").items():
            corpus = data_dir / ("hanlp" if set_name == "hanlp" else "sage")
            ensure_corpus(set_name, corpus)
            pipe = create_studio_pipeline(data_dir=str(corpus), synthesis_languages=["en", "zh"], **overrides)
            pipe.warm_up()
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
                fh.flush()
                print(f"{set_name} {q['id']}: {len(sentences)} sentences", file=sys.stderr)
            pipe.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--collect", action="store_true")
    ap.add_argument("--data-dir", type=Path, default=RESULTS / "answers-data",
                    help="with --collect: the indexes, one folder per corpus (sage, hanlp), as bench/answers.py keeps them")
    ap.add_argument("--sets", default="own,foreign", help="with --collect: question sets (own = its tune split, "
                    "foreign, hanlp)")
    ap.add_argument("--temperature", type=float, default=0.0, help="with --collect: sample, for more varied sentences")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS / "grounding_candidates.jsonl")
    ap.add_argument("--before", metavar="REV", help="also measure the check as it was at this git revision")
    args = ap.parse_args()
    if args.collect:
        RESULTS.mkdir(parents=True, exist_ok=True)
        collect(args.out, args.data_dir, args.sets.split(","), temperature=args.temperature, seed=args.seed)
        return 0
    from figures import figure, save

    rows = [json.loads(line) for line in LABELS.read_text(encoding="utf-8").splitlines() if line.strip()]
    checks = [("answer path", path_keeps)]
    if args.before:
        before = checker_at(args.before)
        checks.append((f"answer path at {args.before}", lambda s, e, q: path_keeps(s, e, q, before)))
    checks.append(("bag of words, pooled", bag_of_words_keeps))
    report, ms = {}, {}
    for name, keeps in checks:
        for first in {r["lang"]: r for r in rows}.values():  # loads the Chinese word segmenter's dictionary
            keeps(first["sentence"], first["evidence"], first["question"])
        start = time.perf_counter()
        for r in rows:
            keeps(r["sentence"], r["evidence"], r["question"])
        ms[name] = (time.perf_counter() - start) * 1000 / len(rows)
        report[name] = {f"{part}, {lang}": measure([r for r in sub if lang == "all" or r["lang"] == lang], keeps)
                        for part, sub in subsets(rows).items()
                        for lang in (("all", "en", "zh") if part in ("all", "held out") else ("all",))}
    lines = ["| check | sentences | n (supported / unsupported) | kept | kept supported | unsupported dropped "
             "| supported dropped |", "|---|---|---:|---:|---:|---:|---:|"]
    for name, parts in report.items():
        for part, m in parts.items():
            if m["sentences"]:
                lines.append(f"| {name} | {part} | {m['sentences']} ({m['supported']} / {m['unsupported']}) | "
                             f"{m['kept']} | {m['kept_supported']:.2f} | {m['unsupported_dropped']:.2f} | "
                             f"{m['supported_dropped']:.2f} |")
    lines.append("")
    lines += [f"{name}: {t:.2f} ms per sentence" for name, t in ms.items()]
    print("\n".join(lines))
    ours = report[checks[0][0]]
    base = report[checks[1][0]]
    figures = []
    for part, suffix in (("all, all", ""), ("held out, all", "_heldout")):
        o, b = ours[part], base[part]
        if not o["sentences"]:
            continue
        figures += [
            figure(f"grounding_kept_supported{suffix}", o["kept_supported"], "share", baseline=b["kept_supported"],
                   goal=">= 0.95", note=f"of {o['kept']} kept of {o['sentences']} labelled sentences ({part})"),
            figure(f"grounding_unsupported_dropped{suffix}", o["unsupported_dropped"], "share",
                   baseline=b["unsupported_dropped"], goal=">= 0.8", note=f"of {o['unsupported']} unsupported ({part})"),
            figure(f"grounding_supported_dropped{suffix}", o["supported_dropped"], "share",
                   baseline=b["supported_dropped"], note=f"of {o['supported']} supported ({part})"),
        ]
    figures.append(figure("grounding_ms_per_sentence", ms[checks[0][0]], "ms", baseline=ms[checks[1][0]],
                          note="the check on one labelled sentence with its evidence (baseline: the next check listed)"))
    save("grounding", figures, {"report": report, "ms_per_sentence": ms}).with_suffix(".md").write_text(
        "\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
