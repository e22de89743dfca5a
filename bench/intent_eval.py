"""Accuracy and latency of the intent classifier, per mode and per language.

Runs every mode (keyword, embedding, llm, hybrid) over the eval set shipped in
``studio_nb/services/intent/eval_set.yaml`` (splits ``dev`` and ``holdout``, disjoint from
the prototypes) and over ``bench/intent_heldout.yaml`` (split ``heldout2``: 120 messages
written later by someone who never saw the classifier, never used for tuning and whose
mistakes this script never prints), and reports accuracy per split and language, a
confusion matrix per mode and warm latency per message, and writes
``bench/results/intent.json``. Latency is reported as absolute ms and as a ratio
to keyword mode measured in the same process, since the machine is shared and noisy.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/intent_eval.py [--no-llm] [--llm-items 48] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from importlib import resources
from pathlib import Path

import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from studio_nb.services.intent import Intent, IntentClassifier  # noqa: E402

LABELS = [i.value for i in Intent]
SHORT = {"KNOWLEDGE_QUERY": "KQ", "SAGE_CODING": "CODE", "SYSTEM_OPERATION": "SYS", "GENERAL_CHAT": "CHAT"}


def load_eval_set() -> list[dict]:
    raw = resources.files("studio_nb.services.intent").joinpath("eval_set.yaml").read_text(encoding="utf-8")
    heldout2 = (ROOT / "bench" / "intent_heldout.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(raw)["items"] + yaml.safe_load(heldout2)["items"]


def make_llm():
    from studio_nb.services.inference import create_inference_client

    return create_inference_client({"backend": "llama_cpp", "n_ctx": 1024}), "llama_cpp (default GGUF)"


def evaluate(clf: IntentClassifier, items: list[dict], repeat: int) -> dict:
    per_lang: dict[str, list[int]] = {}
    confusion = {g: dict.fromkeys(LABELS, 0) for g in LABELS}
    domain_hits = domain_total = 0
    errors, times = [], []
    for item in items:
        res = None
        for _ in range(repeat):
            t0 = time.perf_counter()
            res = clf.classify(item["text"])
            times.append((time.perf_counter() - t0) * 1000)
        ok = res.intent.value == item["intent"]
        split = item.get("split", "dev")
        for key in (item["lang"], f"{split}_{item['lang']}"):
            per_lang.setdefault(key, []).append(int(ok))
        confusion[item["intent"]][res.intent.value] += 1
        if item.get("domains"):
            domain_total += 1
            domain_hits += int(set(item["domains"]) <= set(res.domains))
        if not ok:
            errors.append({"text": item["text"], "lang": item["lang"], "split": split, "expected": item["intent"],
                           "got": res.intent.value, "confidence": res.confidence})
    acc = {lang: sum(v) / len(v) for lang, v in per_lang.items()}
    acc["all"] = (sum(per_lang["en"]) + sum(per_lang["zh"])) / (len(per_lang["en"]) + len(per_lang["zh"]))
    times.sort()
    return {
        "accuracy": {k: round(v, 4) for k, v in acc.items()},
        "n": {key: len(v) for key, v in per_lang.items()},
        "confusion": confusion,
        "domain_recall": round(domain_hits / domain_total, 4) if domain_total else None,
        "latency_ms": {"median": round(statistics.median(times), 3),
                       "p95": round(times[int(0.95 * (len(times) - 1))], 3), "mean": round(statistics.fmean(times), 3)},
        "errors": errors,
    }


def print_confusion(mode: str, confusion: dict) -> None:
    print(f"\n  {mode}: rows = expected, columns = predicted")
    print("  " + " " * 6 + "".join(f"{SHORT[p]:>6}" for p in LABELS))
    for g in LABELS:
        print("  " + f"{SHORT[g]:<6}" + "".join(f"{confusion[g][p]:>6}" for p in LABELS))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-llm", action="store_true", help="skip the llm mode and hybrid+llm (slow on CPU)")
    ap.add_argument("--llm-items", type=int, default=0,
                    help="run llm modes on an evenly spaced subset of N messages (0 = all; ~1-4 s each on CPU)")
    ap.add_argument("--repeat", type=int, default=3, help="timed classify() calls per message (default 3)")
    ap.add_argument("--show-holdout-errors", action="store_true",
                    help="also list holdout mistakes (don't tune on them: they keep the numbers honest)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "intent.json"))
    args = ap.parse_args()

    items = load_eval_set()
    llm, llm_source = (None, None) if args.no_llm else make_llm()
    configs = [("keyword", {}), ("embedding", {}), ("hybrid", {})]
    if llm is not None:
        configs += [("llm", {"llm": llm}), ("hybrid+llm", {"llm": llm})]
    results, warm_s = {}, {}
    for name, kwargs in configs:
        clf = IntentClassifier(name.split("+")[0], **kwargs)
        t0 = time.perf_counter()
        clf.warm_up()
        warm_s[name] = round(time.perf_counter() - t0, 3)
        clf.classify("warm-up message")  # first call pays lazy allocations
        subset = items
        if "llm" in name and 0 < args.llm_items < len(items):
            step = len(items) / args.llm_items
            subset = [items[int(k * step)] for k in range(args.llm_items)]
        results[name] = evaluate(clf, subset, 1 if "llm" in name else args.repeat)

    # The floor under embedding/hybrid: one bare encode() of the message, same process.
    from studio_nb.services.embeddings import Embedder

    enc, times = Embedder(), []
    for item in items:
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            enc.encode([item["text"]])
            times.append((time.perf_counter() - t0) * 1000)
    encode_ms = round(statistics.median(times), 3)
    base = results["keyword"]["latency_ms"]["median"]
    if args.llm_items:
        print(f"(llm modes ran on {args.llm_items} evenly spaced messages)")
    print(f"intent eval: {len(items)} messages ({ {k: v for k, v in results['keyword']['n'].items() if '_' in k} }), llm: {llm_source or 'skipped'}")
    print(f"{'mode':<12}{'en':>8}{'zh':>8}{'all':>8}{'hold en':>9}{'hold zh':>9}{'held2 en':>9}{'held2 zh':>9}"
          f"{'domains':>9}{'med ms':>9}{'p95 ms':>9}{'x kw':>8}{'warm s':>8}")
    for name, r in results.items():
        a, lat = r["accuracy"], r["latency_ms"]
        r["latency_ratio_vs_keyword"] = round(lat["median"] / base, 1) if base else None
        print(f"{name:<12}{a['en']:>8.3f}{a['zh']:>8.3f}{a['all']:>8.3f}"
              f"{a.get('holdout_en', 0):>9.3f}{a.get('holdout_zh', 0):>9.3f}"
              f"{a.get('heldout2_en', 0):>9.3f}{a.get('heldout2_zh', 0):>9.3f}"
              f"{r['domain_recall'] or 0:>9.3f}{lat['median']:>9.2f}{lat['p95']:>9.2f}"
              f"{r['latency_ratio_vs_keyword']:>8}{warm_s[name]:>8}")
    hyb = results["hybrid"]["latency_ms"]["median"]
    print(f"bare embedder.encode() median {encode_ms:.2f} ms; hybrid adds {hyb - encode_ms:.2f} ms on top")
    for name, r in results.items():
        print_confusion(name, r["confusion"])
    for name in ("hybrid", "hybrid+llm"):
        if name in results and results[name]["errors"]:
            print(f"\n  {name} errors:")
            for e in results[name]["errors"]:
                if e["split"] == "heldout2" or (e["split"] == "holdout" and not args.show_holdout_errors):
                    continue  # heldout2 mistakes are never shown: nobody may tune on them
                print(f"    [{e['lang']}] {e['expected']:<17} -> {e['got']:<17} {e['confidence']:.2f}  {e['text']}")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from figures import figure

    acc = results["hybrid"]["accuracy"]
    n = results["hybrid"]["n"]
    figures = [
        figure(f"intent_accuracy_{lang}", acc[f"heldout2_{lang}"], "share", goal=">= 0.9",
               note=f"hybrid mode, {n[f'heldout2_{lang}']} held-out messages nobody tuned on (bench/intent_heldout.yaml)")
        for lang in ("en", "zh")
    ]
    payload = {"eval_items": len(items), "llm_items": args.llm_items or len(items), "llm_client": llm_source, "warm_up_s": warm_s,
               "cpu_count": os.cpu_count(), "load_avg_1m": os.getloadavg()[0], "encode_only_median_ms": encode_ms,
               "figures": figures, "modes": results}
    out.write_text(json.dumps(payload, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
