"""Answer quality and speed on three question sets, side by side, per language.

The sets (``--sets``):

- ``own``: ``bench/questions_answers.yaml``, written by the team (``--split heldout`` is the
  honest part: never looked at while tuning), over ``../shared/data``;
- ``foreign``: ``../shared/eval/foreign_dev.jsonl``, written outside the team, same corpus;
- ``hanlp``: ``bench/corpora/hanlp_questions.jsonl`` over ``bench/corpora/hanlp`` (another
  project's documentation; questions committed before any answer was measured).

Every question is answered by the real Studio pipeline on the embedded defaults
(``pipe.ask``) and scored with ``bench/facts.py`` (a fact counts when 60 % of its key
tokens are in the first 1,000 characters). Reported per set and language:

- **fact coverage** of the answer the user reads;
- **evidence_vs_top5**: the coverage of the evidence pieces as shown (their first 1,000
  characters) over the coverage of the five retrieved chunks, whole — how much of what
  retrieval found reaches the reader;
- **unsupported**: generated sentences kept by the grounding guard that an independent,
  stricter check does not find in the evidence (numbers and code names verbatim, half the
  words); **junk** answers; **prompt echo**: answers containing text of the prompt templates
  or the retry instruction (must be 0);
- **first content** (question → first evidence or text, warm) and **whole answer**, median
  and p90; how often the model was asked again.

Results: ``bench/results/answers.json`` (figures for ``make bench``) and ``answers.md``.

    .venv/bin/python bench/answers.py [--sets own,foreign,hanlp] [--split heldout|tune|all] [--modes grounded]
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
sys.path.insert(0, str(ROOT / "bench"))
from facts import WINDOW, coverage  # noqa: E402

DATA = (ROOT / ".." / "shared" / "data").resolve()
QUESTIONS = ROOT / "bench" / "questions_answers.yaml"
FOREIGN = (ROOT / ".." / "shared" / "eval" / "foreign_dev.jsonl").resolve()
HANLP = ROOT / "bench" / "corpora" / "hanlp"
HANLP_QUESTIONS = ROOT / "bench" / "corpora" / "hanlp_questions.jsonl"
RESULTS = ROOT / "bench" / "results"
TOP = 5  # the retrieved chunks evidence is compared with

_WORD = re.compile(r"[a-z][a-z0-9_]{2,}")
_CJK = re.compile(r"[\u3400-\u9fff]+")
_STOP = frozenset("the and for with that this are from you your can use using into its has have not but".split())


def _jsonl(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [{"id": r["id"], "lang": r["lang"], "q": r["question"], "facts": r["answer_facts"], "split": "all"}
            for r in rows]


def load_sets(names: list[str], split: str) -> dict[str, list[dict]]:
    import yaml

    out = {}
    for name in names:
        if name == "own":
            qs = yaml.safe_load(QUESTIONS.read_text(encoding="utf-8"))["questions"]
            out[name] = [q for q in qs if split == "all" or q["split"] == split]
        elif name == "foreign":
            if not FOREIGN.is_file():
                print(f"{FOREIGN} is missing: the foreign set is skipped", file=sys.stderr)
                continue
            out[name] = _jsonl(FOREIGN)
        elif name == "hanlp":
            out[name] = _jsonl(HANLP_QUESTIONS)
        else:
            raise SystemExit(f"unknown question set {name!r} (own, foreign, hanlp)")
    return out


def corpora(set_name: str) -> list[tuple[Path, str]]:
    """The folders a set's questions are about, with their knowledge domains."""
    if set_name == "hanlp":
        return [(HANLP, "hanlp")]
    return [(DATA / "sage_docs", "sage_docs"), (DATA / "sage_examples", "examples")]


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


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


def prompt_fragments() -> list[str]:
    """Six-word runs of every prompt template and retry instruction the pipeline can send."""
    from studio_nb.operators import prompt_builder as pb

    texts = [pb.BASE, pb.GROUNDED, pb.GROUNDED_CODE, pb.RETRY_HINT, pb.GROUNDED_RETRY_HINT, *pb.INSTRUCTIONS.values()]
    texts += [getattr(pb, n) for n in dir(pb) if n.isupper() and isinstance(getattr(pb, n), str)]
    out = set()
    for t in texts:
        words = re.sub(r"\{\w+\}", " ", t).split()
        out.update(" ".join(words[i : i + 6]).lower() for i in range(max(len(words) - 5, 0)))
    out.update({"please enhance your original answer", "your previous answer was", "evidence:\n[1]"})
    return sorted(out)


def echoes_prompt(text: str, fragments: list[str]) -> bool:
    low = " ".join(text.lower().split())
    return any(f in low for f in fragments)


def is_junk(text: str) -> bool:
    from studio_nb.services.evidence.loops import junk_reason

    return junk_reason(text) is not None


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else float("nan")


def ensure_corpus(set_name: str, data_dir: Path) -> None:
    from studio_nb import create_studio_pipeline

    pipe = create_studio_pipeline(data_dir=str(data_dir))
    for folder, domain in corpora(set_name):
        report = pipe.ingest(folder, domain, progress=False)
        print(f"{domain}: {report.files_seen} files, +{report.chunks_added} chunks", file=sys.stderr)
    pipe.close()


def run_mode(mode: str, set_name: str, questions: list[dict], data_dir: Path, overrides: dict) -> list[dict]:
    from studio_nb import create_studio_pipeline
    from studio_nb.messages import compose_answer
    from studio_nb.services.evidence.grounding import split_sentences

    fragments = prompt_fragments()
    pipe = create_studio_pipeline(data_dir=str(data_dir), answer_mode=mode, **overrides)
    pipe.warm_up()
    pipe.ask("warm-up question about the installation", session_id=f"bench-warm-{mode}").wait()
    rows = []
    for q in questions:
        turn = pipe.ask(q["q"], session_id=f"bench-{mode}-{q['id']}-{time.time_ns()}")
        turn.wait()
        if turn.error is not None:
            rows.append({"id": q["id"], "lang": q["lang"], "set": set_name, "error": repr(turn.error)})
            continue
        resp = turn.response
        evidence = "\n".join(resp.evidence.texts) if resp.evidence else "\n".join(s.text for s in resp.sources)
        shown = compose_answer(resp.evidence, question=q["q"], refs=False) if resp.evidence else ""
        # the chunks retrieval found for this answer (the default k is 5); else a search like it
        found = resp.sources if len(resp.sources) >= TOP else pipe.search(q["q"], k=TOP)
        top = "\n".join(s.text if hasattr(s, "text") else s.chunk.text for s in list(found)[:TOP])
        sentences = split_sentences(resp.synthesis) if resp.synthesis else []
        unsupported = [s for s in sentences if not strict_supported(s, evidence, q["q"])]
        rows.append({
            "id": q["id"], "lang": q["lang"], "set": set_name, "mode": mode,
            "coverage": coverage(resp.text, q["facts"]),
            "evidence_coverage": coverage(shown, q["facts"]),
            "top5_coverage": coverage(top, q["facts"], window=len(top) + 1),
            "evidence_chars": len(shown),
            "sentences": len(sentences), "unsupported": len(unsupported),
            "unsupported_examples": unsupported[:2],
            "junk": not resp.text.strip() or (bool(resp.synthesis) and is_junk(resp.synthesis)),
            "prompt_echo": echoes_prompt(resp.text, fragments),
            "first_content_s": turn.first_content_s, "total_s": turn.duration_s,
            "attempts": resp.attempts, "retry_paid": resp.attempts > 1 and bool(resp.synthesis),
            "dropped": len(resp.dropped), "intent": resp.intent, "synthesis": resp.synthesis,
            "text": resp.text, "question": q["q"], "facts": q["facts"],
        })
        r = rows[-1]
        print(f"{set_name} {mode} {q['id']}: coverage {r['coverage']:.2f} evidence {r['evidence_coverage']:.2f} "
              f"top5 {r['top5_coverage']:.2f} in {turn.duration_s:.1f} s", file=sys.stderr)
    pipe.close()
    return rows


def summarize(rows: list[dict]) -> dict:
    ok = [r for r in rows if "error" not in r]
    first = [r["first_content_s"] for r in ok if r["first_content_s"] is not None]
    total = [r["total_s"] for r in ok]
    sentences = sum(r["sentences"] for r in ok)
    retried = [r for r in ok if r["attempts"] > 1]
    mean = (lambda key: statistics.mean(r[key] for r in ok) if ok else float("nan"))
    top5 = mean("top5_coverage")
    return {
        "questions": len(rows),
        "errors": len(rows) - len(ok),
        "fact_coverage": mean("coverage"),
        "evidence_coverage": mean("evidence_coverage"),
        "top5_coverage": top5,
        "evidence_vs_top5": mean("evidence_coverage") / top5 if top5 else float("nan"),
        "unsupported_share": (sum(r["unsupported"] for r in ok) / sentences) if sentences else 0.0,
        "generated_sentences": sentences,
        "junk": sum(r["junk"] for r in ok),
        "prompt_echo": sum(r["prompt_echo"] for r in ok),
        "first_content_median_s": statistics.median(first) if first else float("nan"),
        "first_content_p90_s": pct(first, 0.9),
        "total_median_s": statistics.median(total) if total else float("nan"),
        "total_p90_s": pct(total, 0.9),
        "retried": len(retried),
        "retry_paid": sum(r["retry_paid"] for r in retried),
    }


def table(summary: dict) -> str:
    head = ("| set | mode | lang | questions | fact coverage | evidence / top-5 chunks | unsupported sentences "
            "| junk | prompt echo | first content median / p90 | whole answer median / p90 | retries (paid off) |")
    lines = [head, "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for key, per_lang in summary.items():
        set_name, mode = key.split("/")
        for lang, s in per_lang.items():
            lines.append(
                f"| {set_name} | {mode} | {lang} | {s['questions']} | {s['fact_coverage']:.2f} | "
                f"{s['evidence_coverage']:.2f} / {s['top5_coverage']:.2f} = {s['evidence_vs_top5']:.2f} | "
                f"{s['unsupported_share']:.1%} of {s['generated_sentences']} | {s['junk']} | {s['prompt_echo']} | "
                f"{s['first_content_median_s'] * 1000:.0f} / {s['first_content_p90_s'] * 1000:.0f} ms | "
                f"{s['total_median_s']:.2f} / {s['total_p90_s']:.2f} s | {s['retried']} ({s['retry_paid']}) |"
            )
    return "\n".join(lines)


#: figure name prefix per set: the project's own set keeps the names it always had
PREFIX = {"own": "fact_coverage", "foreign": "fact_coverage_foreign", "hanlp": "fact_coverage_hanlp"}


def figures(summary: dict, split: str) -> list[dict]:
    """The goals of the answer path, judged on the default (grounded) mode."""
    from figures import figure

    out = []
    for key, per_lang in summary.items():
        set_name, mode = key.split("/")
        grounded = mode == "grounded"
        tag = "" if grounded else f"_{mode}"
        note = f"{split} questions" if set_name == "own" else f"{set_name} questions"
        for lang in ("all", "en", "zh"):
            goal = (">= 0.6" if lang == "all" else ">= 0.55") if grounded else None
            out.append(figure(f"{PREFIX[set_name]}{tag}_{lang}", per_lang[lang]["fact_coverage"], "share", goal=goal,
                              note=f"{note}, first 1,000 characters"))
        # the issue names evidence_vs_top5_{en,zh} for the foreign set; the others carry their set's name
        ev_tag = "" if set_name == "foreign" else f"_{set_name}"
        set_tag = "" if set_name == "own" else f"_{set_name}"
        for lang in ("en", "zh"):
            s = per_lang[lang]
            out.append(figure(f"evidence_vs_top5{ev_tag}{tag}_{lang}", s["evidence_vs_top5"], "ratio",
                              goal=">= 0.9" if grounded else None,
                              note=f"evidence {s['evidence_coverage']:.2f} / top-5 chunks {s['top5_coverage']:.2f}"))
            out.append(figure(f"answer_time{set_tag}{tag}_{lang}", s["total_median_s"], "s",
                              goal="<= 4" if grounded else None, note=f"median; p90 {s['total_p90_s']:.2f} s"))
            out.append(figure(f"answer_time_p90{set_tag}{tag}_{lang}", s["total_p90_s"], "s",
                              goal="<= 6" if grounded else None))
        s = per_lang["all"]
        sfx = "" if set_name == "own" else f"_{set_name}"
        out += [
            figure(f"unsupported_sentences{sfx}{tag}", s["unsupported_share"], "share",
                   goal="<= 0.05" if grounded else None, note=f"of {s['generated_sentences']} generated sentences kept"),
            figure(f"junk_answers{sfx}{tag}", s["junk"], "answers", goal="== 0" if grounded else None),
            figure(f"prompt_echo_answers{sfx}{tag}", s["prompt_echo"], "answers", goal="== 0" if grounded else None),
            figure(f"first_content{sfx}{tag}", s["first_content_median_s"] * 1000, "ms",
                   goal="<= 300" if grounded else None, note=f"median, warm; p90 {s['first_content_p90_s'] * 1000:.0f} ms"),
        ]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default="own,foreign,hanlp")
    ap.add_argument("--split", default="heldout", choices=["heldout", "tune", "all"], help="of the own set")
    ap.add_argument("--modes", default="grounded")
    ap.add_argument("--data-dir", type=Path, default=RESULTS / "answers-data")
    ap.add_argument("--limit", type=int, default=0, help="only the first N questions of each set (a quick look)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a configuration override (JSON value), e.g. --set synthesis_tokens=48")
    ap.add_argument("--out", default="answers", help="results file stem under bench/results")
    args = ap.parse_args()
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    sets = load_sets(args.sets.split(","), args.split)
    all_rows, summary = [], {}
    for set_name, questions in sets.items():
        if args.limit:
            questions = questions[: args.limit]
        data_dir = args.data_dir / ("hanlp" if set_name == "hanlp" else "sage")
        ensure_corpus(set_name, data_dir)
        for mode in args.modes.split(","):
            rows = run_mode(mode, set_name, questions, data_dir, overrides)
            all_rows += rows
            summary[f"{set_name}/{mode}"] = {
                lang: summarize([r for r in rows if lang == "all" or r["lang"] == lang]) for lang in ("en", "zh", "all")
            }
    md = table(summary)
    print(md)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.md").write_text(f"own set split: {args.split}\n\n{md}\n", encoding="utf-8")
    (RESULTS / f"{args.out}.json").write_text(
        json.dumps({"split": args.split, "summary": summary, "figures": figures(summary, args.split), "rows": all_rows},
                   ensure_ascii=False, indent=1),
        encoding="utf-8",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
