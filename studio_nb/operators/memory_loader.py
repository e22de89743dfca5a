"""MemoryLoaderOp: the session's recent turns plus older turns relevant to the question."""

from __future__ import annotations

from studio_nb.kernel import Operator
from studio_nb.messages import MemoryContext, RoutedMessage


class MemoryLoaderOp(Operator):
    """Loads conversation memory (the store keeps a TTL cache, so this is usually cheap)."""

    blocking = True

    def __init__(self) -> None:
        self.store = None

    def warm_up(self) -> None:
        self.store = self.need("memory")

    def process(self, msg: RoutedMessage) -> MemoryContext:
        # sessions are per user (studio_nb.access): bob's "s1" must never load alice's "s1"
        return self.store.load(msg.original.session_id, query=msg.content, user=msg.original.user)
