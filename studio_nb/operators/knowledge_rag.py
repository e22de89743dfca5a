"""KnowledgeRAGOp: retrieve the chunks the answer should be grounded in."""

from __future__ import annotations

from studio_nb.kernel import Operator
from studio_nb.messages import RoutedMessage, Source
from studio_nb.services.intent.types import Intent

#: intents that are answered without retrieval (the DirectLLM path of the design)
NO_RETRIEVAL = (Intent.GENERAL_CHAT.value, Intent.SYSTEM_OPERATION.value)


class KnowledgeRAGOp(Operator):
    """Hybrid (dense + BM25) search over the routed domains, across domains concurrently.

    Domains the router suggests but nobody has ingested are ignored; when it suggests none
    (a question that names no domain) or none of them exists, every domain the user can
    read is searched, so a fresh install still answers from the bundled documentation.

    Retrieval is skipped only when the router is sure a message needs none (chit-chat, a
    tool request) *and* the message names nothing the indexed documents talk about: an
    uncertain guess (confidence below ``min_confidence``) or a name like ``JobManager``
    means searching anyway — about 30 ms — and letting the evidence decide.
    """

    def __init__(self, k: int = 4, mode: str = "hybrid", min_confidence: float = 0.6) -> None:
        self.k = k
        self.mode = mode
        self.min_confidence = min_confidence
        self.knowledge = None

    def warm_up(self) -> None:
        self.knowledge = self.need("knowledge")
        self.knowledge.warm_up()

    def skip_reason(self, msg: RoutedMessage) -> str | None:
        if msg.intent not in NO_RETRIEVAL or msg.original.domains or msg.confidence < self.min_confidence:
            return None
        if self.knowledge is not None and self.knowledge.mentions(msg.content):
            return None  # "hey, what does the JobManager do?" is a question about the docs
        return f"{msg.intent} needs no retrieval"

    def domains_for(self, msg: RoutedMessage) -> list[str] | None:
        existing = {d.name for d in self.knowledge.domains(user=msg.original.user)}  # only what the user may read
        wanted = [d for d in msg.knowledge_domains if d in existing]
        return wanted or None

    async def process(self, msg: RoutedMessage) -> tuple[Source, ...]:
        hits = await self.knowledge.asearch(msg.original.search or msg.content, domains=self.domains_for(msg), k=self.k, mode=self.mode,
                                            user=msg.original.user)
        return tuple(Source(h.chunk.citation, float(h.score), h.chunk.text) for h in hits)
