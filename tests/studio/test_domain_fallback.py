"""A question that names no knowledge domain searches every domain the user can read.

The router's domain keywords ("example", "论文", "upload") narrow a search; a question with
none of them used to go to ``sage_docs`` alone, so a folder a user ingested under a name of
their own (or the examples) was never searched unless the question happened to name it.
"""

from __future__ import annotations

from pathlib import Path

NOTES = """# Ledger service

The okapi ledger listens on port 7311 and keeps 14 days of entries.
"""


def test_a_question_naming_no_domain_reaches_a_domain_of_the_users_own(scripted_studio, tmp_path: Path):
    folder = tmp_path / "team"
    folder.mkdir()
    (folder / "ledger.md").write_text(NOTES, encoding="utf-8")
    pipe = scripted_studio(answer_mode="extractive")
    pipe.ingest(folder, "team_notes", progress=False)
    turn = pipe.ask("Which port does the okapi ledger listen on?", session_id="fallback-1")
    turn.wait()
    response = turn.response
    assert response.intent == "KNOWLEDGE_QUERY" and response.domains == ()
    assert any(p.domain == "team_notes" and "7311" in p.text for p in response.evidence.pieces)


def test_nothing_found_says_every_readable_domain_was_searched():
    from studio_nb.messages import ContextEnrichedMessage, RoutedMessage, UserMessage
    from studio_nb.operators.evidence import nothing_found

    for question, expected in [("What is the capital of the zorblax quadrant?", "every knowledge domain you can read"),
                               ("佐布拉克象限的首都是哪里？", "你可读的全部知识库")]:
        msg = ContextEnrichedMessage(RoutedMessage(UserMessage(question, session_id="t"), "KNOWLEDGE_QUERY", (), 0.9))
        assert expected in nothing_found(msg)
    named = ContextEnrichedMessage(RoutedMessage(UserMessage("what do my papers say?", session_id="t"),
                                                 "KNOWLEDGE_QUERY", ("papers",), 0.9))
    assert nothing_found(named) == "Nothing in the selected knowledge (papers) answers this."
