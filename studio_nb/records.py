"""The small records several layers share: token counts and a stored turn of memory.

They sit below everything else (they import nothing of studio-nb but ``access``), so the
inference clients, the memory store and the pipeline's messages use the same classes
without importing each other: ``messages`` carries a ``Usage`` the model reported and a
``MemoryContext`` the memory store loaded.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass

from studio_nb.access import LOCAL_USER


@dataclass(frozen=True)
class Usage:
    """Token counts of one request, as the backend's tokenizer sees them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class StoredTurn:
    """One question and its answer as the memory store keeps it (a row); ``id`` is set
    by the store when saved. Not to be confused with ``studio_nb.turn.Turn``, the live
    answer a front end streams."""

    session_id: str
    user: str
    question: str
    answer: str
    intent: str
    sources: tuple[dict, ...]
    created_at: float
    request_id: str
    id: int | None = None

    @classmethod
    def new(
        cls,
        session_id: str,
        question: str,
        answer: str,
        *,
        user: str = LOCAL_USER,
        intent: str = "GENERAL_CHAT",
        sources: tuple[dict, ...] | list[dict] = (),
        request_id: str | None = None,
    ) -> "StoredTurn":
        """A turn stamped now, with a fresh request id unless one is given."""
        return cls(session_id, user, question, answer, intent, tuple(sources), time.time(),
                   request_id or uuid.uuid4().hex)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sources"] = [dict(s) for s in self.sources]
        return d


@dataclass(frozen=True)
class MemoryContext:
    """What the prompt builder gets: the recent window and relevant older turns."""

    recent: tuple[StoredTurn, ...] = ()
    recalled: tuple[StoredTurn, ...] = ()


__all__ = ["MemoryContext", "StoredTurn", "Usage"]
