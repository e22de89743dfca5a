"""GuardrailOp: catch the empty, degenerate or looping answers small models produce.

A bad answer goes back to the prompt builder (a bounded feedback edge) to be generated
again; when the attempts are used up the best we have is returned with the reason
recorded, instead of failing the turn.
"""

from __future__ import annotations

import re

from studio_nb.kernel import Operator, current_request
from studio_nb.messages import Regenerate, Response, StreamChunk, Usage

_WORD = re.compile(r"\w+", re.UNICODE)


def find_loop(text: str, n: int = 4, repeats: int = 3) -> int | None:
    """Index where the answer starts looping (an n-gram of words seen ``repeats`` times), else None.

    Chinese has no spaces, so characters count as words when a text has few spaces.
    """
    tokens = [(m.group(), m.start()) for m in _WORD.finditer(text)]
    if len(tokens) < 8 or text.count(" ") < len(text) / 20:
        tokens = [(c, i) for i, c in enumerate(text) if not c.isspace()]
        n = max(n, 6)
    seen: dict[tuple[str, ...], list[int]] = {}
    for i in range(len(tokens) - n + 1):
        gram = tuple(t for t, _ in tokens[i : i + n])
        starts = seen.setdefault(gram, [])
        starts.append(i)
        if len(starts) >= repeats:
            return tokens[starts[1]][1]
    return None


def verdict(text: str, *, min_chars: int = 2) -> str | None:
    """Why ``text`` is unusable, or None if it is fine."""
    stripped = text.strip()
    if len(stripped) < min_chars:
        return "empty answer"
    letters = sum(ch.isalnum() for ch in stripped)
    if letters < len(stripped) * 0.3:
        return "degenerate answer (mostly symbols)"
    if re.search(r"(.)\1{15,}", stripped):
        return "degenerate answer (a character repeated)"
    if find_loop(stripped) is not None:
        return "looping answer"
    return None


class GuardrailOp(Operator):
    def __init__(self, max_attempts: int = 2, min_chars: int = 2) -> None:
        self.max_attempts = max_attempts
        self.min_chars = min_chars

    def process(self, msg: StreamChunk) -> Response | Regenerate:
        req = msg.request
        reason = verdict(msg.text, min_chars=self.min_chars)
        if reason is not None and req.attempt + 1 < self.max_attempts:
            return Regenerate(req, reason, msg.text)
        text = msg.text.strip()
        if reason == "looping answer":
            cut = find_loop(text)
            text = text[:cut].rstrip() + " …" if cut else text
        elif reason is not None and not text:
            text = "Sorry, I could not produce an answer to that. Try rephrasing the question."
        routed = req.context.routed
        ctx = current_request()
        return Response(
            text=text,
            intent=routed.intent,
            session_id=routed.original.session_id,
            request_id=routed.original.request_id,
            sources=req.context.documents,
            tool_calls=req.context.tool_results,
            timings=dict(ctx.timings) if ctx else {},
            usage=msg.usage or Usage(),
            confidence=routed.confidence,
            domains=routed.knowledge_domains,
            attempts=req.attempt + 1,
            guardrail=reason,
            degraded=req.context.degraded,
            question=routed.content,
        )
