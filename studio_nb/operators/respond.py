"""Building the turn's ``Response``: the one place its fields are filled in.

Two operators end a turn with a Response — the evidence operator when no model is needed
(extractive mode, a tool answer, nothing found) and the grounding guard after the model —
and both build it here, so the record a front end receives has one shape.
"""

from __future__ import annotations

from studio_nb.kernel import current_request
from studio_nb.messages import ContextEnrichedMessage, Dropped, Evidence, Response, Usage


def respond(
    ctx: ContextEnrichedMessage,
    *,
    mode: str,
    evidence: Evidence | None = None,
    synthesis: str = "",
    dropped: tuple[Dropped, ...] = (),
    note: str = "",
    usage: Usage | None = None,
    attempts: int = 0,
    guardrail: str | None = None,
) -> Response:
    routed = ctx.routed
    evidence = evidence if evidence is not None else ctx.evidence
    request = current_request()
    return Response(
        intent=routed.intent,
        session_id=routed.original.session_id,
        request_id=routed.original.request_id,
        sources=ctx.documents,
        tool_calls=ctx.tool_results,
        timings=dict(request.timings) if request else {},
        usage=usage or Usage(),
        confidence=routed.confidence,
        domains=routed.knowledge_domains,
        attempts=attempts,
        guardrail=guardrail,
        degraded=ctx.degraded,
        question=routed.content,
        evidence=evidence,
        synthesis=synthesis,
        dropped=dropped,
        note=note,
        mode=mode,
    )
