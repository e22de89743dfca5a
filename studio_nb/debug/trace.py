"""``turn.trace``: the kernel's trace of one turn, with the Studio's reading of it.

The kernel records every node run generically (``studio_nb.kernel.trace``); this subclass
adds what only the Studio knows: where the prompt, the raw generated text, the evidence
and the answer are (``prompt``, ``generated``, ``evidence``, ``response``), a notebook
timeline (``_repr_html_``), the page inspector's JSON (``view``) and the stored form
(``stored_json``: strings clipped at ``STORE_STR`` so one huge tool output cannot bloat
the memory database).
"""

from __future__ import annotations

from typing import Any

from studio_nb.kernel import codec
from studio_nb.kernel.trace import Trace, TraceRecord

STORE_STR = 20_000


class TurnTrace(Trace):
    """See the module docstring; iterate it for ``TraceRecord``s."""

    def model_run(self) -> TraceRecord | None:
        """The last run that produced the model's text (the LLM operator's record)."""
        from studio_nb.messages import LLMRequest, StreamChunk

        runs = [r for r in self if isinstance(r.input, LLMRequest) and isinstance(r.output, StreamChunk)]
        return runs[-1] if runs else None

    @property
    def prompt(self) -> tuple[dict[str, str], ...] | None:
        """The chat messages the model got last (None when no model ran)."""
        run = self.model_run()
        return run.input.messages if run is not None else None

    @property
    def generated(self) -> str | None:
        """The model's raw text, before the grounding check dropped anything."""
        run = self.model_run()
        return run.output.text if run is not None else None

    @property
    def evidence(self) -> Any:
        """The Evidence shown first (None when there was none)."""
        from studio_nb.messages import Evidence

        for rec in self:
            for item in rec.emitted:
                if isinstance(item, Evidence):
                    return item
        return None

    @property
    def response(self) -> Any:
        """The final Response (None if the turn did not get that far)."""
        from studio_nb.messages import Response

        for rec in reversed(self.records):
            if isinstance(rec.output, Response):
                return rec.output
        return None

    def timings(self) -> dict[str, tuple[float, bool]]:
        """Per node: (milliseconds run now, whether every run of it was reused)."""
        out: dict[str, tuple[float, bool]] = {}
        for rec in self:
            ms, reused = out.get(rec.operator, (0.0, True))
            out[rec.operator] = (ms + (0.0 if rec.reused else rec.duration_ms), reused and rec.reused)
        return out

    def stored_json(self) -> dict[str, Any]:
        """The JSON kept with the turn in the memory database (and in memory once compacted)."""
        if self.compacted:
            return self.to_json()
        return self.to_json(codec.Encoder(max_str=STORE_STR))

    def view(self) -> dict[str, Any]:
        """The trace for the Studio page: each record with its input and output explained."""
        from studio_nb.debug.view import record_view

        return {"meta": codec.encode(self.meta, shared=False), "records": [record_view(r) for r in self]}

    def _repr_html_(self) -> str:
        from studio_nb.debug.view import timeline_html

        meta = self.meta
        title = f"replay of {meta['replay_of']}" if meta.get("replay_of") else ""
        return timeline_html(self, title)


__all__ = ["STORE_STR", "TurnTrace"]
