"""A list item's own marker ("3. ", "- ", "* ") is not part of the evidence it gives.

Evidence is shown under its citation number, so an item kept whole read "[2] 3. The
`context` ..." (two numbers, the second meaningless out of its list), and a numbered item
with two sentences even gave "3." as a sentence of its own. The marker goes; the item's
line range still cites it. Real text: the bundled docs, cut into chunks by the real
Markdown splitter, and a README of the shared corpus.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from studio_nb.citation import Citation
from studio_nb.messages import Evidence, EvidencePiece, compose_answer
from studio_nb.services.evidence import EvidenceSelector, split_units
from studio_nb.services.knowledge.split_markdown import split_markdown
from studio_nb.services.knowledge.split_text import SplitConfig

DOCS = Path(__file__).resolve().parents[2] / "studio_nb" / "data" / "docs"
CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "data"
MARKER = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s")


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")


def test_numbered_items_of_the_bundled_docs_lose_their_number_and_keep_their_line():
    path = DOCS / "overview.md"
    lines = _lines(path)
    units = {u.start_line: u for u in split_units("\n".join(lines))}
    numbered = [no for no, line in enumerate(lines, 1) if re.match(r"\d+\. ", line)]
    assert len(numbered) == 9  # the nine operators of "The Studio pipeline"
    for no in numbered:
        unit = units[no]
        marker = re.match(r"\d+\. ", lines[no - 1]).group(0)
        assert unit.text.startswith(lines[no - 1][len(marker):])  # only the marker went
        wrapped = lines[no].startswith("   ") and not unit.text.endswith(":")  # its text goes on on the next line
        assert unit.end_line == no + wrapped
        if wrapped:  # the item is whole: "... KNOWLEDGE_QUERY, SAGE_CODING, SYSTEM_OPERATION or GENERAL_CHAT ..."
            assert unit.text == lines[no - 1][len(marker):] + " " + lines[no].strip()
    # item 3 ends with ":" and leads in its own continuation, not items 4-9 (its siblings)
    assert units[numbered[2]].lead_in and not any(units[no].context for no in numbered[3:])
    assert units[15].text.startswith("The `context` ParallelGroup runs three branches")
    assert units[13].text.startswith("`intent_router` (IntentRouterOp) classifies the intent")


@pytest.mark.parametrize(
    "question, line, starts",
    [
        ("What does the context ParallelGroup run?", 15, "The `context` ParallelGroup runs"),
        ("What does the intent_router do?", 13, "`intent_router` (IntentRouterOp)"),
    ],
)
def test_evidence_from_a_numbered_list_reads_cleanly_under_its_citation(question, line, starts):
    """The newcomer's two cases, through the real splitter and selector, as the answer shows them."""
    chunks = split_markdown((DOCS / "overview.md").read_text(encoding="utf-8"), SplitConfig())
    picked = EvidenceSelector().select(question, chunks)
    assert picked
    pieces = tuple(
        EvidencePiece(n, s.text, Citation("overview.md", s.start_line, s.end_line, chunks[s.doc].heading, "studio_nb_docs"),
                      s.score)
        for n, s in enumerate(picked, 1)
    )
    answer = compose_answer(Evidence(pieces), question=question)
    first = pieces[0]
    assert answer.startswith(f"[1] {starts}")
    assert first.start_line <= line <= first.end_line  # the citation still points at the item's line
    for piece in pieces:
        assert not any(MARKER.match(x) for x in piece.text.split("\n")), piece.text
    assert not re.search(r"^\[\d+\] \d+\. ", answer, re.M)


def test_bullets_and_nested_items_of_the_corpus_lose_their_marker():
    """A README of the shared corpus: "- **remote_env.py** - ...", nested "  - ...", "1. ..."."""
    path = CORPUS / "sage_examples" / "L2-platform" / "environment" / "README.md"
    if not path.exists():
        pytest.fail(f"the shared corpus is missing: {path}")
    lines = _lines(path)
    units = {u.start_line: u for u in split_units("\n".join(lines))}
    items = [no for no, line in enumerate(lines, 1) if MARKER.match(line)]
    assert len(items) >= 5
    for no in items:
        marker = MARKER.match(lines[no - 1]).group(0)
        assert units[no].text == lines[no - 1][len(marker):].strip(), (no, units[no].text)
    assert units[9].text.startswith("**remote_env.py** - RemoteEnvironment")  # the dash inside the text stays


def test_a_numbered_item_with_two_sentences_gives_no_bare_number():
    units = split_units("Steps:\n\n3. Build the pipeline. Then submit it.\n")
    assert [u.text for u in units] == ["Steps:", "Build the pipeline. Then submit it."]  # not "3." + two
    assert units[1].start_line == units[1].end_line == 3
