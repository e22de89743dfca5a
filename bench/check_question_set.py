"""Check the answer-quality question set (bench/questions_answers.yaml) against the corpus.

Checks that the YAML parses; ids are unique; every cited source file exists; every fact occurs in
at least one of its item's sources (case-insensitive, whitespace collapsed); no fact occurs in its
own question text; and the counts per language and split are the ones the set promises: 40 zh,
46 en (40 about ../shared/data plus 6 about studio-nb's own docs), and within each language half
`tune` and half `heldout`, alternating by id (odd tune, even heldout).

Sources are paths relative to ../shared/data, except those of domain `studio_nb_docs`, which are
relative to the repository root (studio_nb/data/docs/...).

    python bench/check_question_set.py [path/to/questions_answers.yaml]

Exits 1 and lists every problem when a check fails; prints the counts when all pass.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
DATA = (REPO / ".." / "shared" / "data").resolve()
DEFAULT = REPO / "bench" / "questions_answers.yaml"

EXPECTED = {  # (lang, split) -> count
    ("en", "tune"): 23, ("en", "heldout"): 23,
    ("zh", "tune"): 20, ("zh", "heldout"): 20,
}
EXPECTED_STUDIO = 6  # English questions with domain studio_nb_docs
DOMAINS = {"sage_docs", "examples", "studio_nb_docs"}


def norm(text: str) -> str:
    """Lower-case and collapse every run of whitespace to one space."""
    return re.sub(r"\s+", " ", text).strip().lower()


def source_path(item: dict, src: str) -> Path:
    return (REPO / src) if item.get("domain") == "studio_nb_docs" else (DATA / src)


def check(path: Path) -> list[str]:
    problems: list[str] = []
    items = yaml.safe_load(path.read_text(encoding="utf-8"))["questions"]
    ids = Counter(it.get("id") for it in items)
    problems += [f"duplicate id {i!r}" for i, n in ids.items() if n > 1]
    texts: dict[Path, str] = {}

    for it in items:
        iid = it.get("id", "?")
        for key in ("id", "lang", "split", "q", "facts", "sources"):
            if not it.get(key):
                problems.append(f"{iid}: missing {key}")
        if it.get("domain") and it["domain"] not in DOMAINS:
            problems.append(f"{iid}: unknown domain {it['domain']!r}")
        m = re.fullmatch(r"(en|zh)(\d+)", str(iid))
        if not m or m.group(1) != it.get("lang"):
            problems.append(f"{iid}: id does not match lang {it.get('lang')!r}")
        elif it.get("split") != ("tune" if int(m.group(2)) % 2 else "heldout"):
            problems.append(f"{iid}: split should alternate (odd tune, even heldout)")
        if not 1 <= len(it.get("facts") or []) <= 3:
            problems.append(f"{iid}: needs 1 to 3 facts")

        corpus = []
        for src in it.get("sources") or []:
            p = source_path(it, src)
            if not p.is_file():
                problems.append(f"{iid}: source not found: {src}")
                continue
            if p not in texts:
                texts[p] = norm(p.read_text(encoding="utf-8", errors="replace"))
            corpus.append(texts[p])
        q = norm(it.get("q", ""))
        for fact in it.get("facts") or []:
            f = norm(str(fact))
            if corpus and not any(f in c for c in corpus):
                problems.append(f"{iid}: fact {fact!r} not found in its sources")
            if f in q:
                problems.append(f"{iid}: fact {fact!r} occurs in the question text")

    counts = Counter((it.get("lang"), it.get("split")) for it in items)
    for key, want in EXPECTED.items():
        if counts.get(key, 0) != want:
            problems.append(f"count {key}: {counts.get(key, 0)}, expected {want}")
    studio = sum(1 for it in items if it.get("domain") == "studio_nb_docs")
    if studio != EXPECTED_STUDIO or any(
        it.get("lang") != "en" for it in items if it.get("domain") == "studio_nb_docs"
    ):
        problems.append(f"studio_nb_docs questions: {studio} (all en), expected {EXPECTED_STUDIO}")
    if not problems:
        by_domain = Counter((it["lang"], it.get("domain", "-")) for it in items)
        print(f"OK: {len(items)} questions")
        for (lang, split), n in sorted(counts.items()):
            print(f"  {lang} {split:8s} {n}")
        for (lang, dom), n in sorted(by_domain.items()):
            print(f"  {lang} {dom:15s} {n}")
    return problems


if __name__ == "__main__":
    problems = check(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT)
    for p in problems:
        print("FAIL", p)
    sys.exit(1 if problems else 0)
