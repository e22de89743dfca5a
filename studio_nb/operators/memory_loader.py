"""MemoryLoaderOp: the session's recent turns plus older turns relevant to the question."""

from __future__ import annotations

from studio_nb.kernel import Operator
from studio_nb.messages import MemoryContext, RoutedMessage
from studio_nb.services import shared


def turn_dict(turn) -> dict:
    return {"question": turn.question, "answer": turn.answer, "intent": turn.intent, "id": turn.id}


class MemoryLoaderOp(Operator):
    """Loads conversation memory (the store keeps a TTL cache, so this is usually cheap)."""

    blocking = True

    def __init__(self, data_dir: str, window: int = 6, recall_k: int = 3, embedding_model: str | None = None) -> None:
        self.data_dir = data_dir
        self.window = window
        self.recall_k = recall_k
        self.embedding_model = embedding_model
        self.store = None

    def warm_up(self) -> None:
        self.store = shared.memory_store(self.data_dir, self.window, self.recall_k, self.embedding_model)

    def process(self, msg: RoutedMessage) -> MemoryContext:
        ctx = self.store.load(msg.original.session_id, query=msg.content)
        return MemoryContext(
            recent=tuple(turn_dict(t) for t in ctx.recent),
            recalled=tuple(turn_dict(t) for t in ctx.recalled),
        )
