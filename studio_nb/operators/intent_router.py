"""IntentRouterOp: which of the four intents, and which knowledge domains to search."""

from __future__ import annotations

from studio_nb.kernel import Operator
from studio_nb.messages import RoutedMessage, UserMessage


class IntentRouterOp(Operator):
    """Adapts the pipeline's intent classifier (``resources.intent``: keyword / embedding /
    llm / hybrid, chosen by the ``intent_mode`` setting) to the pipeline.

    Domains the user chose explicitly (``UserMessage.domains``) win over the
    classifier's guess.
    """

    blocking = True  # embedding the message is CPU work: keep it off the event loop

    def __init__(self) -> None:
        self.classifier = None

    def warm_up(self) -> None:
        self.classifier = self.need("intent")
        self.classifier.warm_up()

    def process(self, msg: UserMessage) -> RoutedMessage:
        result = self.classifier.classify(msg.content)
        domains = tuple(msg.domains) if msg.domains else tuple(result.domains)
        return RoutedMessage(
            original=msg,
            intent=result.intent.value,
            knowledge_domains=domains,
            confidence=float(result.confidence),
            matched_keywords=tuple(result.matched_keywords),
            trace=tuple(result.trace),
        )
