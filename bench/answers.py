"""Answer quality and speed per answer mode, on questions with reference facts.

For every question of ``bench/questions_answers.yaml`` (English and Chinese, each with
one to three short facts copied from the documents) and every answer mode, the real
Studio pipeline on the embedded defaults answers through ``pipe.ask`` after
``../shared/data/sage_docs`` and ``sage_examples`` are ingested. Reported per mode and
language:

- **fact coverage**: the share of reference facts found (case-insensitive, whitespace
  collapsed) in the first 1,000 characters of the answer text;
- **unsupported**: the share of generated sentences that survived the grounding guard
  but that an independent, stricter check does not find in the evidence — every number
  and code name must be in the evidence or the question, and at least 50 % of its words
  (plain lowercase words for English, character bigrams for Chinese; not the guard's
  jieba terms and stemming);
- **junk**: answers that are empty, or whose generated part loops or is mostly symbols
  (the evidence is copied from the documents; a table or code in it is not junk);
- **first content** (question → first evidence or text, on a warm pipeline) and **whole
  answer**, median and p90, plus how often the model was asked again and how often that
  retry ended with a supported sentence (whether a retry pays for itself).

Numbers are for the split asked for (``--split heldout`` is the honest one: those
questions were never looked at while tuning). Results go to ``bench/results/answers.json``
and a Markdown table to ``bench/results/answers.md``.

    .venv/bin/python bench/answers.py [--split heldout|tune|all] [--modes grounded,extractive,generative]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = (ROOT / ".." / "shared" / "data").resolve()
QUESTIONS = ROOT / "bench" / "questions_answers.yaml"
RESULTS = ROOT / "bench" / "results"
WINDOW = 1000

_WORD = re.compile(r"[a-z][a-z0-9_]{2,}")
_CJK = re.compile(r"[\u3400-\u9fff]+")
_STOP = frozenset("the and for with that this are from you your can use using into its has have not but".split())


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def coverage(answer: str, facts: list[str]) -> float:
    window = norm(answer[:WINDOW])
    return sum(norm(f) in window for f in facts) / len(facts)


def strict_supported(sentence: str, evidence: str, question: str) -> bool:
    """The bench's own support check (deliberately not the guard's; see the module doc)."""
    from studio_nb.services.evidence.grounding import GroundingChecker

    source = norm(evidence + " " + question)
    bare = re.sub(r"\[\d+\]", "", sentence)
    for claim in GroundingChecker().claims(bare):
        if norm(claim).strip("().,;:`'\" ") not in source:
            return False
    low = bare.lower()
    units = [w for w in _WORD.findall(low) if w not in _STOP]
    for run in _CJK.findall(bare):
        units += [run[i : i + 2] for i in range(len(run) - 1)] or [run]
    if not units:
        return True
    return sum(u in source for u in units) / len(units) >= 0.5


def is_junk(text: str) -> bool:
    from studio_nb.services.evidence.loops import junk_reason

    return junk_reason(text) is not None


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else float("nan")


def ensure_corpus(data_dir: Path) -> None:
    from studio_nb import create_studio_pipeline

    pipe = create_studio_pipeline(data_dir=str(data_dir))
    for folder, domain in (("sage_docs", "sage_docs"), ("sage_examples", "examples")):
        report = pipe.ingest(DATA / folder, domain, progress=True)
        print(f"{domain}: {report.files_seen} files, +{report.chunks_added} chunks", file=sys.stderr)
    pipe.close()


def run_mode(mode: str, questions: list[dict], data_dir: Path) -> list[dict]:
    from studio_nb import create_studio_pipeline

    pipe = create_studio_pipeline(data_dir=str(data_dir), answer_mode=mode)
    pipe.warm_up()
    pipe.ask("warm-up question about LocalEnvironment", session_id=f"bench-warm-{mode}").wait()
    rows = []
    for q in questions:
        turn = pipe.ask(q["q"], session_id=f"bench-{mode}-{q['id']}-{time.time_ns()}")
        turn.wait()
        if turn.error is not None:
            rows.append({"id": q["id"], "lang": q["lang"], "error": repr(turn.error)})
            continue
        resp = turn.response
        evidence = "\n".join(resp.evidence.texts) if resp.evidence else "\n".join(s.text for s in resp.sources)
        from studio_nb.services.evidence.grounding import split_sentences

        sentences = split_sentences(resp.synthesis) if resp.synthesis else []
        unsupported = [s for s in sentences if not strict_supported(s, evidence, q["q"])] if mode != "extractive" else []
        rows.append({
            "id": q["id"], "lang": q["lang"], "split": q["split"], "mode": mode,
            "coverage": coverage(resp.text, q["facts"]),
            "sentences": len(sentences), "unsupported": len(unsupported),
            "unsupported_examples": unsupported[:2],
            "junk": not resp.text.strip() or (bool(resp.synthesis) and is_junk(resp.synthesis)),
            "first_content_s": turn.first_content_s, "total_s": turn.duration_s,
            "attempts": resp.attempts, "retry_paid": resp.attempts > 1 and bool(resp.synthesis),
            "dropped": len(resp.dropped), "intent": resp.intent, "text": resp.text,
        })
        print(f"{mode} {q['id']}: coverage {rows[-1]['coverage']:.2f} in {turn.duration_s:.1f} s", file=sys.stderr)
    pipe.close()
    return rows


def summarize(rows: list[dict]) -> dict:
    ok = [r for r in rows if "error" not in r]
    first = [r["first_content_s"] for r in ok if r["first_content_s"] is not None]
    total = [r["total_s"] for r in ok]
    sentences = sum(r["sentences"] for r in ok)
    retried = [r for r in ok if r["attempts"] > 1]
    return {
        "questions": len(rows),
        "errors": len(rows) - len(ok),
        "fact_coverage": statistics.mean(r["coverage"] for r in ok) if ok else float("nan"),
        "unsupported_share": (sum(r["unsupported"] for r in ok) / sentences) if sentences else 0.0,
        "generated_sentences": sentences,
        "junk": sum(r["junk"] for r in ok),
        "first_content_median_s": statistics.median(first) if first else float("nan"),
        "first_content_p90_s": pct(first, 0.9),
        "total_median_s": statistics.median(total) if total else float("nan"),
        "total_p90_s": pct(total, 0.9),
        "retried": len(retried),
        "retry_paid": sum(r["retry_paid"] for r in retried),
    }


def table(summary: dict) -> str:
    head = ("| mode | lang | questions | fact coverage | unsupported sentences | junk | first content "
            "median / p90 | whole answer median / p90 | retries (paid off) |")
    lines = [head, "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for mode, per_lang in summary.items():
        for lang, s in per_lang.items():
            lines.append(
                f"| {mode} | {lang} | {s['questions']} | {s['fact_coverage']:.2f} | "
                f"{s['unsupported_share']:.1%} of {s['generated_sentences']} | {s['junk']} | "
                f"{s['first_content_median_s'] * 1000:.0f} / {s['first_content_p90_s'] * 1000:.0f} ms | "
                f"{s['total_median_s']:.2f} / {s['total_p90_s']:.2f} s | {s['retried']} ({s['retry_paid']}) |"
            )
    return "\n".join(lines)


def main() -> int:
    import yaml

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="heldout", choices=["heldout", "tune", "all"])
    ap.add_argument("--modes", default="grounded,extractive,generative")
    ap.add_argument("--data-dir", type=Path, default=RESULTS / "answers-data")
    ap.add_argument("--limit", type=int, default=0, help="only the first N questions (a quick look)")
    args = ap.parse_args()
    questions = yaml.safe_load(QUESTIONS.read_text(encoding="utf-8"))["questions"]
    questions = [q for q in questions if args.split == "all" or q["split"] == args.split]
    if args.limit:
        questions = questions[: args.limit]
    ensure_corpus(args.data_dir)
    all_rows, summary = [], {}
    for mode in args.modes.split(","):
        rows = run_mode(mode, questions, args.data_dir)
        all_rows += rows
        summary[mode] = {
            lang: summarize([r for r in rows if lang == "all" or r["lang"] == lang]) for lang in ("en", "zh", "all")
        }
    md = table(summary)
    print(md)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "answers.md").write_text(f"split: {args.split}\n\n{md}\n", encoding="utf-8")
    (RESULTS / "answers.json").write_text(
        json.dumps({"split": args.split, "summary": summary, "figures": figures(summary, args.split), "rows": all_rows},
                   ensure_ascii=False, indent=1),
        encoding="utf-8",
    )
    return 0


def figures(summary: dict, split: str) -> list[dict]:
    """The goals of the answer path, judged on the default (grounded) mode."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from figures import figure

    out = []
    for mode, per_lang in summary.items():
        tag = "" if mode == "grounded" else f"_{mode}"
        for lang in ("all", "en", "zh"):
            goal = (">= 0.6" if lang == "all" else ">= 0.55") if mode == "grounded" else None
            out.append(figure(f"fact_coverage{tag}_{lang}", per_lang[lang]["fact_coverage"], "share", goal=goal,
                              note=f"{split} questions, first 1,000 characters"))
        s = per_lang["all"]
        grounded = mode == "grounded"
        out += [
            figure(f"unsupported_sentences{tag}", s["unsupported_share"], "share", goal="<= 0.05" if grounded else None,
                   note=f"of {s['generated_sentences']} generated sentences kept"),
            figure(f"junk_answers{tag}", s["junk"], "answers", goal="== 0" if grounded else None),
            figure(f"first_content{tag}", s["first_content_median_s"] * 1000, "ms", goal="<= 300" if grounded else None,
                   note=f"median, warm; p90 {s['first_content_p90_s'] * 1000:.0f} ms"),
            figure(f"answer_time{tag}", s["total_median_s"], "s", goal="<= 5" if grounded else None,
                   note=f"median; p90 {s['total_p90_s']:.2f} s"),
        ]
    return out


if __name__ == "__main__":
    sys.exit(main())
