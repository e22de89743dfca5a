"""The typed messages that flow along the Studio pipeline's edges (DESIGN §1).

    UserMessage -> RoutedMessage -> (memory ∥ documents ∥ tool results)
      -> ContextEnrichedMessage -> (+ Evidence) -> LLMRequest -> StreamChunk* -> Response

Frozen dataclasses: an operator never mutates what it received, so a message can be
shown, logged or replayed as it was. A Turn streams ``StepEvent``, ``Evidence``,
``TextDelta`` parts and ends with the ``Response`` (see ``studio_nb/turn.py``).

Every message has a faithful JSON form (``to_json`` / ``from_json``, through the kernel's
codec): a turn's trace is stored with the turn and a paused turn travels as JSON, and
both must come back as the same messages (tuples as tuples, a Response as a Response).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from studio_nb.citation import Citation, Cited
from studio_nb.language import is_chinese
from studio_nb.records import MemoryContext, StoredTurn, Usage  # shared with the services (records.py)


def _rid() -> str:
    from studio_nb.kernel.context import new_request_id

    return new_request_id()


@dataclass(frozen=True)
class Attachment:
    """A cell or file the user attached to a question: part of the question, cited as
    ``label`` (``nb.ipynb:C3``, ``src/util.py``) in the evidence."""

    label: str
    text: str


@dataclass(frozen=True)
class UserMessage:
    content: str
    session_id: str = "default"
    request_id: str = field(default_factory=_rid)
    user: str = "local"
    priority: int = 0
    #: restrict retrieval to these knowledge domains (None = let the router decide)
    domains: tuple[str, ...] | None = None
    history: tuple[dict[str, str], ...] = ()
    created_at: float = field(default_factory=time.time)
    #: cells and files attached to the question (evidence pieces of their own, cited by label)
    attachments: tuple[Attachment, ...] = ()
    #: what retrieval searches for when it is not the question itself (an error's names)
    search: str = ""


@dataclass(frozen=True)
class RoutedMessage:
    original: UserMessage
    intent: str
    knowledge_domains: tuple[str, ...]
    confidence: float
    matched_keywords: tuple[str, ...] = ()
    #: how the router decided, stage by stage (keyword, embedding, fusion, domains ...)
    routing: tuple[dict[str, Any], ...] = ()

    @property
    def content(self) -> str:
        return self.original.content


@dataclass(frozen=True)
class Source(Cited):
    """A retrieved chunk as the pipeline carries it: where it is (``citation``), its fused
    score and its text. ``source.path``, ``.heading``, ``.ref``... read the citation."""

    citation: Citation
    score: float
    text: str = ""

    @classmethod
    def upgrade_fields(cls, values: dict[str, Any]) -> dict[str, Any]:
        """A trace written before the one Citation kept the place in flat fields."""
        return _cited_fields(values)

    def to_dict(self, with_text: bool = False) -> dict[str, Any]:
        d = {**self.citation.to_dict(), "score": round(self.score, 4)}
        if with_text:
            d["text"] = self.text
        return d


@dataclass(frozen=True)
class ToolResult:
    name: str
    arguments: dict[str, Any]
    result: Any
    error: str | None = None
    duration_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EvidencePiece(Cited):
    """One cited passage of the answer: ``[n]`` → ``citation.ref``, or a tool result.

    ``kind`` is "passage", "tool" (cited by the tool's name) or "attachment" (a cell or
    file attached to the question, cited by its label)."""

    n: int
    text: str
    citation: Citation
    score: float = 0.0
    kind: str = "passage"

    @classmethod
    def upgrade_fields(cls, values: dict[str, Any]) -> dict[str, Any]:
        """A trace written before the one Citation kept the place in flat fields."""
        if "citation" not in values and values.get("kind") in ("tool", "attachment"):
            values = {**values, "domain": ""}  # their refs were the tool's name and the label alone
        return _cited_fields(values)

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "text": self.text, **self.citation.to_dict(), "score": round(self.score, 4),
                "kind": self.kind}


def _cited_fields(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` of a record with its flat place fields (domain, path, lines, heading) as one
    ``citation`` — how traces and snapshots written before the Citation type load."""
    if "citation" in values:
        return values
    flat = {k: values.get(k) for k in ("domain", "path", "start_line", "end_line", "heading")}
    citation = Citation(str(flat["path"] or ""), int(flat["start_line"] or 0), int(flat["end_line"] or 0),
                        str(flat["heading"] or ""), str(flat["domain"] or ""))
    return {**{k: v for k, v in values.items() if k not in flat}, "citation": citation}


@dataclass(frozen=True)
class Evidence:
    """The first part of an answer: the passages (or tool results) that answer the question.

    Streamed before any generated text; ``note`` says why there is none, or what it covers.
    """

    pieces: tuple[EvidencePiece, ...] = ()
    note: str = ""
    request_id: str = ""
    session_id: str = ""

    def __bool__(self) -> bool:
        return bool(self.pieces)

    @property
    def texts(self) -> list[str]:
        return [p.text for p in self.pieces]

    def to_dict(self) -> dict[str, Any]:
        return {"pieces": [p.to_dict() for p in self.pieces], "note": self.note}


@dataclass(frozen=True)
class ContextEnrichedMessage:
    routed: RoutedMessage
    memory: MemoryContext = MemoryContext()
    documents: tuple[Source, ...] = ()
    tool_results: tuple[ToolResult, ...] = ()
    #: branches that failed or were skipped, and why (shown to the user, not hidden)
    degraded: tuple[tuple[str, str], ...] = ()
    #: the selected passages, once the evidence operator has run
    evidence: Evidence | None = None


@dataclass(frozen=True)
class LLMRequest:
    """A fully built prompt. ``messages`` keep the stable system prompt first (KV reuse)."""

    context: ContextEnrichedMessage
    messages: tuple[dict[str, str], ...]
    max_tokens: int = 256
    temperature: float = 0.0
    seed: int | None = 0
    prompt_tokens: int = 0
    attempt: int = 0
    trimmed: tuple[str, ...] = ()  # what the budget guard dropped
    #: how ``messages`` were rendered (history_turns, max_doc_chars, retry_reason), so the
    #: budget guard can re-render a trimmed context the same way
    render_options: dict[str, Any] = field(default_factory=dict)

    @property
    def session_id(self) -> str:
        return self.context.routed.original.session_id


@dataclass(frozen=True)
class StreamChunk:
    """One piece of a streamed answer. The last chunk has ``is_final`` and the full text."""

    content: str
    session_id: str
    request_id: str
    is_final: bool = False
    text: str = ""  # the answer so far (full answer when is_final)
    finish_reason: str | None = None
    usage: Usage | None = None
    attempt: int = 0
    request: LLMRequest | None = None


@dataclass(frozen=True)
class Regenerate:
    """The guardrail's verdict that an answer must be generated again (feedback edge)."""

    request: LLMRequest
    reason: str
    rejected_text: str


@dataclass(frozen=True)
class Dropped:
    """A generated sentence the grounding check removed, and why."""

    text: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"text": self.text, "reason": self.reason}


@dataclass(frozen=True)
class Response:
    """The record of one turn, as every front end receives it.

    The parts are kept apart (``evidence``, ``synthesis``, ``dropped``, ``note``) and
    ``text`` is computed from them — the evidence first, then the checked synthesis
    (``compose_answer``) — so no front end chooses between a stored text and the parts.
    """

    intent: str
    session_id: str
    request_id: str
    sources: tuple[Source, ...] = ()
    tool_calls: tuple[ToolResult, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    usage: Usage = Usage()
    confidence: float = 0.0
    domains: tuple[str, ...] = ()
    attempts: int = 1
    guardrail: str | None = None  # why an answer was replaced or flagged
    degraded: tuple[tuple[str, str], ...] = ()
    turn_id: int | None = None  # the memory row, once committed
    question: str = ""
    evidence: Evidence | None = None
    synthesis: str = ""  # the generated part that survived the grounding check
    dropped: tuple[Dropped, ...] = ()
    note: str = ""  # a line about the answer ("nothing found", "the summary was left out")
    mode: str = "grounded"  # the answer mode that produced it

    @property
    def text(self) -> str:
        """The whole answer as plain text: cited passages, the synthesis, the note, the references."""
        return compose_answer(self.evidence, self.synthesis, self.note, self.question)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "evidence": self.evidence.to_dict() if self.evidence is not None else None,
            "synthesis": self.synthesis,
            "dropped": [d.to_dict() for d in self.dropped],
            "note": self.note,
            "mode": self.mode,
            "intent": self.intent,
            "confidence": round(self.confidence, 4),
            "domains": list(self.domains),
            "session_id": self.session_id,
            "request_id": self.request_id,
            "sources": [s.to_dict() for s in self.sources],
            "tool_calls": [t.to_dict() for t in self.tool_calls],
            "timings": {k: round(v, 2) for k, v in self.timings.items()},
            "usage": {
                "prompt_tokens": self.usage.prompt_tokens,
                "completion_tokens": self.usage.completion_tokens,
                "total_tokens": self.usage.total_tokens,
            },
            "attempts": self.attempts,
            "guardrail": self.guardrail,
            "degraded": [list(d) for d in self.degraded],
            "turn_id": self.turn_id,
            "question": self.question,
        }


@dataclass(frozen=True)
class TextDelta:
    """What the Studio stream yields for each new piece of answer text."""

    content: str
    request_id: str
    session_id: str = ""
    #: a guardrail retry started over: clients should clear the partial answer
    restart: bool = False


def compose_answer(
    evidence: Evidence | None, synthesis: str = "", note: str = "", question: str = "", *, refs: bool = True,
    passages: bool = True,
) -> str:
    """The answer as plain text: cited passages first, then the synthesis, then the references.

    ::

        [1] A ParallelGroup runs its branches concurrently and joins their results.
        [2] ...

        In short: ... [1]

        [1] studio_nb_docs/kernel.md:L20-L22

    ``passages=False`` leaves out the passages and a note the evidence already carried (for
    a terminal that printed the evidence when it arrived).
    """
    zh = is_chinese(question)
    parts = []
    pieces = evidence.pieces if evidence is not None else ()
    if pieces and passages:
        parts.append("\n".join(f"[{p.n}] {p.text}" for p in pieces))
    if synthesis:
        label = ("简而言之：" if zh else "In short:") + ("\n" if synthesis.startswith("```") else ("" if zh else " "))
        parts.append(label + synthesis if pieces else synthesis)
    if note and (passages or evidence is None or evidence.note != note):
        parts.append(note)
    cited = [p for p in pieces if p.kind != "tool"] if refs else []
    if cited:
        parts.append("\n".join(f"[{p.n}] {p.citation.titled}" for p in cited))
    return "\n\n".join(parts)


# ---------------------------------------------------------------------- JSON
_MESSAGES = (Citation, Attachment, UserMessage, RoutedMessage, Source, ToolResult, StoredTurn, MemoryContext, EvidencePiece, Evidence,
             ContextEnrichedMessage, LLMRequest, Usage, StreamChunk, Regenerate, Dropped, Response, TextDelta)


def _codec() -> Any:
    from studio_nb.kernel import codec

    codec.register(*_MESSAGES)
    return codec


def to_json(value: Any) -> Any:
    """``value`` (a message, or anything holding messages) as JSON-able data, faithfully:
    ``from_json(json.loads(json.dumps(to_json(m)))) == m``."""
    return _codec().encode(value)


def from_json(data: Any) -> Any:
    """The messages ``to_json`` wrote (only message classes are rebuilt)."""
    return _codec().decode(data)


def rebind(value: Any, request_id: str, memo: dict | None = None) -> Any:
    """``value`` with every message in it carrying ``request_id`` (a replay's reused messages
    belong to the new turn). Pass the same ``memo`` for one turn to keep shared parts shared."""
    return _codec().replace_fields(value, memo, request_id=request_id)


_codec()
