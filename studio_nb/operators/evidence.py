"""EvidenceOp: the passages (or tool results) that answer the question, shown first.

Runs after the context join. It picks the sentences, lines and code of the retrieved
chunks that answer the question (``services/evidence``), numbers them ``[1]``, ``[2]``…
with their ``path:L12-L14``, and streams them to the user at once, before any model runs
(``stream_types``: the Evidence goes to the caller, not along an edge).

Then it decides whether the model is needed at all, by answer mode:

- ``extractive``: never — the evidence is the answer (the fastest mode, no LLM);
- ``grounded`` (default): not for a tool result (``17*23 = 391`` is the answer), not for
  a knowledge question with no evidence ("nothing found" beats an invented answer), not
  for a question in a language the model does not write well (``synthesis_languages``;
  the bundled 135M model writes English, and its Chinese recombined evidence words into
  claims the evidence does not make), not when the evidence the model would read
  (``synthesis_evidence_chars``, the best first) is mostly in the other language (the
  synthesis must restate one passage in the asker's words: an English sentence cannot
  restate a Chinese passage, and every such synthesis was dropped by the check); otherwise
  the model writes a short synthesis of the evidence, checked afterwards;
- ``generative``: always, from the whole retrieved chunks (for strong models; no
  evidence part).

When retrieval ran but no passage passed, the note says so and names the domains searched;
a knowledge question ends there, any other question goes on to the model, whose answer the
grounding guard labels as the model's own.

When it answers itself it sends a ``Response`` straight to the memory saver; otherwise
the enriched message goes on to the prompt builder (type-routed edges).
"""

from __future__ import annotations

from dataclasses import replace
from typing import AsyncIterator

import anyio

from studio_nb.citation import Citation
from studio_nb.errors import ConfigError
from studio_nb.kernel import Operator
from studio_nb.language import cjk_share
from studio_nb.messages import ContextEnrichedMessage, Evidence, EvidencePiece, Response, Source, is_chinese
from studio_nb.operators.prompt_builder import best_evidence
from studio_nb.operators.respond import respond
from studio_nb.services.intent.types import Intent
from studio_nb.services.tools.statements import state

MODES = ("grounded", "extractive", "generative")
#: intents whose questions are about documents: with no evidence, the model is not asked
DOCUMENT_INTENTS = (Intent.KNOWLEDGE_QUERY.value,)
#: below this router confidence the intent is a guess, and the question's own floor applies
UNSURE = 0.6


def language(text: str) -> str:
    """The language a question is asked in, as the synthesis languages name it: zh or en."""
    return "zh" if is_chinese(text) else "en"


def passage_citation(doc: Source, sel) -> Citation:
    """Where a selected passage of ``doc`` is: its own lines of the chunk's file. (A chunk
    counted in cells or pages keeps its own range: the selector counts lines.)"""
    if doc.citation.unit != "L":
        return doc.citation
    return replace(doc.citation, start_line=sel.start_line, end_line=sel.end_line)


def nothing_found(msg: ContextEnrichedMessage) -> str:
    """"Nothing found", plainly, with the domains that were searched, in the asker's language."""
    searched = sorted(set(msg.routed.knowledge_domains) | {d.domain for d in msg.documents})
    zh = is_chinese(msg.routed.content)
    # no domain named by the router: every domain the user can read was searched
    where = ", ".join(searched) or ("你可读的全部知识库" if zh else "every knowledge domain you can read")
    if zh:
        return f"所选知识库（{where}）中没有回答这个问题的内容。"
    return f"Nothing in the selected knowledge ({where}) answers this."


class EvidenceOp(Operator):
    """See the module docstring.

    The selector score below which a passage does not count as evidence depends on what
    was asked: ``question_min_score`` for a question about the documents (the chunks were
    retrieved for it, so their best lines are shown unless they share almost nothing with
    it; Chinese questions score lower, their terms being many short bigrams);
    ``code_min_score`` for a coding request (unrelated docs must not crowd out the code the
    model writes); ``min_score`` for a message the router took for chit-chat or a tool
    request (retrieval still runs when the router is unsure, and finds *something*).
    """

    stream_types = (Evidence,)

    def __init__(
        self, mode: str = "grounded", min_score: float = 0.3, question_min_score: float = 0.08,
        code_min_score: float = 0.2, synthesis_languages: tuple[str, ...] | list[str] = ("en",),
        synthesis_evidence_chars: int = 450,
    ) -> None:
        if mode not in MODES:
            raise ConfigError(f"answer mode {mode!r} is not one of {MODES}")
        self.mode = mode
        self.min_score = min_score
        self.question_min_score = question_min_score
        self.code_min_score = code_min_score
        self.synthesis_languages = tuple(synthesis_languages or ())
        self.synthesis_evidence_chars = synthesis_evidence_chars
        self.selector = None

    def floor(self, intent: str, confidence: float) -> float:
        """The lowest selector score that counts as evidence for this kind of message."""
        if intent == Intent.KNOWLEDGE_QUERY.value or (intent != Intent.SAGE_CODING.value and confidence < UNSURE):
            return self.question_min_score
        return self.code_min_score if intent == Intent.SAGE_CODING.value else self.min_score

    def warm_up(self) -> None:
        self.selector = self.need("evidence")

    def select(self, msg: ContextEnrichedMessage) -> Evidence:
        """The Evidence for ``msg``: tool results first, then the best passages."""
        original = msg.routed.original
        pieces: list[EvidencePiece] = []
        for a in original.attachments:  # what the user attached is part of the question: shown first, as is
            pieces.append(EvidencePiece(len(pieces) + 1, a.text, Citation(a.label), kind="attachment"))
        attached = len(pieces)
        for t in msg.tool_results:
            text = state(t.name, t.arguments, t.result, t.error)
            pieces.append(EvidencePiece(len(pieces) + 1, text, Citation(t.name), kind="tool"))
        if msg.documents and len(pieces) == attached:
            floor = self.floor(msg.routed.intent, msg.routed.confidence)
            for sel in self.selector.select(msg.routed.content, msg.documents):
                if sel.score < floor:
                    continue
                pieces.append(EvidencePiece(len(pieces) + 1, sel.text, passage_citation(msg.documents[sel.doc], sel),
                                            sel.score))
        note = ""
        if not pieces and (msg.routed.intent in DOCUMENT_INTENTS or msg.documents):
            note = nothing_found(msg)
        return Evidence(tuple(pieces), note, original.request_id, original.session_id)

    def direct_answer(self, msg: ContextEnrichedMessage, evidence: Evidence) -> Response | None:
        """The Response when no model is needed (see the module docstring), else None."""
        if self.mode == "extractive" or msg.tool_results:
            return respond(msg, mode=self.mode, evidence=evidence, note=evidence.note)
        if not evidence and evidence.note and msg.routed.intent in DOCUMENT_INTENTS:
            return respond(msg, mode=self.mode, evidence=evidence, note=evidence.note)
        if evidence and self.mode == "grounded" and not self.can_synthesize(msg.routed.content, evidence):
            return respond(msg, mode=self.mode, evidence=evidence)  # the evidence is the answer
        return None

    def can_synthesize(self, question: str, evidence: Evidence) -> bool:
        """Whether the model may write a synthesis: the question is in a language it writes, and
        the evidence it would read is mostly in that language too (cjk_share below or above 0.5)."""
        asked = language(question)
        if asked not in self.synthesis_languages:
            return False
        read = " ".join(text for _, text in best_evidence(evidence.pieces, self.synthesis_evidence_chars))
        return (cjk_share(read) >= 0.5) == (asked == "zh")

    async def process(self, msg: ContextEnrichedMessage) -> AsyncIterator[Evidence | ContextEnrichedMessage | Response]:
        if self.mode == "generative":
            yield msg
            return
        evidence = await anyio.to_thread.run_sync(self.select, msg)
        if evidence or evidence.note:
            yield evidence  # to the user now, before the model starts
        direct = self.direct_answer(msg, evidence)
        yield direct if direct is not None else replace(msg, evidence=evidence)
