"""``Throttle``: redraw a live display at most N times a second.

Tokens can arrive far faster than a browser repaints; the magic and the panel redraw the
answer only when ``ready()`` says so (and always for the final state).
"""

from __future__ import annotations

import time


class Throttle:
    """``ready()`` is true at most ``per_second`` times a second (always true at first)."""

    def __init__(self, per_second: float = 10.0) -> None:
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self._last = float("-inf")

    def ready(self) -> bool:
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            return True
        return False
