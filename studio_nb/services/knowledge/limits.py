"""What one ingest may cost, and the handle that stops it or watches it.

A small upload can cost a great deal to ingest: a 157 KB PDF whose 1,000 pages share one
content stream kept a server busy for 320 s and made 4,000 chunks. So an ingest takes
:class:`IngestLimits` — pages and decoded content per PDF, characters per file, chunks per
ingest, chunks a user may hold — checked as early as each can be known: the page count
and the content size before any text is extracted, characters while a file is read,
chunks before anything is embedded. A breach raises :class:`LimitExceeded` (code
``limit``) whose message names the limit, its value and the setting that raises it;
nothing is stored. ``None`` means unlimited (a notebook or the CLI ingesting a trusted
folder passes no limits at all).

:class:`IngestControl` is the other direction: the caller's handle on a running ingest,
to cancel it (checked between files, PDF pages and embedding slices: a client that went
away stops paying) and to see how far it got.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

from studio_nb.errors import StudioError


class LimitExceeded(StudioError):
    """An ingest went over one of its :class:`IngestLimits`; nothing of it was stored."""

    code = "limit"

    def __init__(self, message: str, *, limit: str) -> None:
        super().__init__(message)
        self.limit = limit


class IngestCancelled(StudioError):
    """The ingest was cancelled (its client went away); nothing of it was stored."""

    code = "cancelled"


#: what each limit counts, for the messages
_UNITS = {
    "max_pdf_pages": "pages per PDF",
    "max_pdf_content_bytes": "bytes of decoded page content per PDF",
    "max_file_chars": "characters of text per file",
    "max_chunks": "chunks per ingest",
    "max_user_chunks": "chunks per user",
}


@dataclass(frozen=True)
class IngestLimits:
    """Bounds on one ingest; ``settings`` maps a limit's name to where it is set (e.g.
    ``"StudioExtension.ingest_max_pdf_pages"``) so the error can say what to change.

    ``user_chunks`` is how many chunks the user's domains hold before this ingest; with
    ``max_user_chunks`` it bounds what the ingest may add (replaced chunks are credited).
    """

    max_pdf_pages: int | None = None
    max_pdf_content_bytes: int | None = None
    max_file_chars: int | None = None
    max_chunks: int | None = None
    max_user_chunks: int | None = None
    user_chunks: int = 0
    settings: Mapping[str, str] = field(default_factory=dict)

    def check(self, name: str, value: int, what: str) -> None:
        """Raise LimitExceeded when ``value`` is over the limit ``name``; ``what`` says
        what was counted (``"report.pdf has 20,000 pages"``)."""
        limit = getattr(self, name)
        if limit is not None and value > limit:
            raise self.exceeded(name, what)

    def exceeded(self, name: str, what: str) -> LimitExceeded:
        where = self.settings.get(name)
        fix = f"; an admin can raise it with {where}" if where else ""
        return LimitExceeded(f"{what}; the limit is {getattr(self, name):,} {_UNITS[name]}{fix}", limit=name)


class IngestControl:
    """Cancel a running ingest and see its progress, from any thread.

    ``on_progress(stage, done, total)`` is called from the ingesting thread as it moves:
    ``reading`` (files), ``embedding`` (chunks), ``saving``. :attr:`state` holds the
    latest values for a caller that polls instead.
    """

    def __init__(self, on_progress: Callable[[str, int, int], None] | None = None) -> None:
        self._cancelled = threading.Event()
        self._on_progress = on_progress
        self.state: dict[str, object] = {"stage": "queued", "done": 0, "total": 0, "since": time.time()}

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def check(self) -> None:
        """Raise IngestCancelled once :meth:`cancel` was called (the ingest's checkpoints)."""
        if self._cancelled.is_set():
            raise IngestCancelled("the ingest was cancelled before it finished; nothing of it was stored")

    def progress(self, stage: str, done: int, total: int) -> None:
        self.check()
        if stage != self.state["stage"]:
            self.state = {"stage": stage, "done": done, "total": total, "since": time.time()}
        else:
            self.state = {**self.state, "done": done, "total": total}
        if self._on_progress is not None:
            self._on_progress(stage, done, total)
