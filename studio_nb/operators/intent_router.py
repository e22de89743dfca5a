"""IntentRouterOp: which of the four intents, and which knowledge domains to search."""

from __future__ import annotations

from studio_nb.kernel import Operator
from studio_nb.messages import RoutedMessage, UserMessage


class IntentRouterOp(Operator):
    """Adapts the pipeline's intent classifier (``resources.intent``: keyword / embedding /
    llm / hybrid, chosen by the ``intent_mode`` setting) to the pipeline.

    Domains the user chose explicitly (``UserMessage.domains``) win over the
    classifier's guess. ``mode`` (keyword / embedding / llm / hybrid) overrides the
    classifier's mode for this operator only: a session's variant, with the same model
    and domains.
    """

    blocking = True  # embedding the message is CPU work: keep it off the event loop

    def __init__(self, mode: str | None = None) -> None:
        self.mode = mode
        self.classifier = None

    def warm_up(self) -> None:
        self.classifier = self.need("intent")
        self.classifier.warm_up()

    def _hidden_domains(self, user: str | None) -> frozenset[str]:
        """Other users' private domains: never routed to, matched or named for ``user``
        (a message naming one would otherwise show its name in the answer's domains)."""
        knowledge = getattr(self.resources, "knowledge", None)
        if user is None or knowledge is None or not hasattr(knowledge, "private_to_others"):
            return frozenset()
        return knowledge.private_to_others(user)

    def process(self, msg: UserMessage) -> RoutedMessage:
        kw: dict = {"mode": self.mode} if self.mode else {}  # fakes in tests take only the text
        hidden = self._hidden_domains(msg.user)
        if hidden:
            kw["hidden"] = hidden
        result = self.classifier.classify(msg.content, **kw)
        domains = tuple(msg.domains) if msg.domains else tuple(result.domains)
        return RoutedMessage(
            original=msg,
            intent=result.intent.value,
            knowledge_domains=domains,
            confidence=float(result.confidence),
            matched_keywords=tuple(result.matched_keywords),
            routing=tuple(result.stages),
        )
