"""MemorySaverOp: commit the turn to SQLite before the user is told it is done."""

from __future__ import annotations

from dataclasses import replace

from studio_nb.kernel import Operator
from studio_nb.messages import Response


class MemorySaverOp(Operator):
    """Runs before the output sink on purpose: a ``done`` frame is only sent for a turn
    that is already durable (WAL, synchronous=FULL), so a crash loses no acknowledged turn."""

    idempotent = False  # a retry would store the turn twice
    blocking = True

    def __init__(self) -> None:
        self.store = None

    def warm_up(self) -> None:
        self.store = self.need("memory")

    def process(self, msg: Response) -> Response:
        from studio_nb.kernel import current_request
        from studio_nb.records import StoredTurn

        ctx = current_request()
        turn = StoredTurn.new(
            msg.session_id,
            msg.question,
            msg.text,
            user=(ctx.user if ctx and ctx.user else "local"),
            intent=msg.intent,
            sources=[s.to_dict() for s in msg.sources],
            request_id=msg.request_id,
        )
        saved = self.store.save_turn(turn)
        return replace(msg, turn_id=saved.id)
