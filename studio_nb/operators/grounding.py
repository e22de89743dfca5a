"""GroundingGuardOp: keep the generated sentences the evidence supports, drop the rest.

After the model has written its synthesis, every sentence is checked against the evidence
it was given (``services/evidence/grounding.py``): the numbers, names and paths it states
must be in the evidence, and most of its words too. Unsupported sentences are dropped and
listed in ``Response.dropped`` with the reason, so front ends can mark where they were.
When nothing survives, the evidence stands alone with a one-line note.

Before anything else, every sentence that repeats the instructions the model was given (its
system prompt, a retry instruction, a "Question:" label) is removed: a small model that cannot
answer writes its prompt back, and none of that may reach the user.

An empty, looping or degenerate answer may go back to the prompt builder (a bounded feedback
edge, ``max_attempts``); by default it does not (``guardrail_attempts: 1``): the evidence is
already on screen, and a second generation costs seconds for rarely better text. A synthesis that is fluent but has no supported
sentence is asked again only with ``retry_unsupported``: measured with the bundled model
(``bench/answers.py``), such a retry produced a supported sentence 1 time in 8, at the
price of a second generation (~3 s on 2 cores), so by default the evidence stands alone.

Without evidence (chit-chat, a coding request nothing was retrieved for, generative mode)
there is nothing to check against: only junk is caught (loops are cut, an empty answer
is replaced by an apology). When retrieval ran and found nothing (the evidence operator's
note), the answer says so first, then gives the model's answer labelled as its own — or
nothing more when that answer failed the junk checks.
"""

from __future__ import annotations

from studio_nb.kernel import Operator
from studio_nb.messages import Dropped, Regenerate, Response, StreamChunk, Usage, is_chinese
from studio_nb.operators.respond import respond
from studio_nb.operators.prompt_builder import INSTRUCTIONS, TEMPLATES
from studio_nb.services.evidence.grounding import split_sentences
from studio_nb.services.evidence.loops import echoes, find_loop, junk_reason
from studio_nb.services.intent.types import Intent

UNSUPPORTED_NOTE = "(The model's summary was not supported by these passages and was left out.)"
UNSUPPORTED_NOTE_ZH = "（模型的总结没有得到这些段落的支持，已省略。）"
MODEL_LABEL = "Model answer (not from your documents): "
MODEL_LABEL_ZH = "模型的回答（并非来自你的文档）："


class GroundingGuardOp(Operator):
    def __init__(self, mode: str = "grounded", max_attempts: int = 2, retry_unsupported: bool = False) -> None:
        self.mode = mode
        self.max_attempts = max_attempts
        self.retry_unsupported = retry_unsupported
        self.checker = None

    def warm_up(self) -> None:
        if self.mode == "grounded":
            self.checker = self.need("grounding")

    def process(self, msg: StreamChunk) -> Response | Regenerate:
        req = msg.request
        ctx = req.context
        usage = msg.usage or Usage()
        can_retry = req.attempt + 1 < self.max_attempts
        text = without_echo(msg.text.strip(), req.messages)
        junk = junk_reason(text)
        evidence = ctx.evidence
        if self.mode != "grounded" or not evidence:
            if junk is not None and can_retry:
                return Regenerate(req, junk, msg.text)
            note = evidence.note if evidence is not None else ""
            if note:  # retrieval ran and found nothing: say so first, then the model's own answer, labelled
                label = MODEL_LABEL_ZH if is_chinese(ctx.routed.content) else MODEL_LABEL
                synthesis = note if junk is not None else f"{note}\n\n{label}{text}"
            else:
                synthesis = _salvage(text, junk)
            return respond(ctx, mode=self.mode, synthesis=synthesis, usage=usage,
                           attempts=req.attempt + 1, guardrail=junk)
        if self.checker is None:
            self.warm_up()
        verdicts = self.checker.check(
            text, evidence.texts, ctx.routed.content,
            allow_code=ctx.routed.intent == Intent.SAGE_CODING.value, truncated=msg.finish_reason == "length",
        )
        kept = [v for v in verdicts if v.kept]
        if not kept and can_retry and (junk is not None or self.retry_unsupported):
            return Regenerate(req, junk or "no sentence was supported by the evidence", msg.text)
        dropped = tuple(Dropped(v.text, v.reason or "unsupported") for v in verdicts if not v.kept and not v.filler)
        note = "" if kept or not dropped else (UNSUPPORTED_NOTE_ZH if is_chinese(ctx.routed.content) else UNSUPPORTED_NOTE)
        unverified = [n for v in kept for n in v.unverified]
        if unverified:
            note = f"(The code uses names the sources do not show: {', '.join(dict.fromkeys(unverified))}.)"
        return respond(
            ctx, mode=self.mode, synthesis=_join(v.text for v in kept), dropped=dropped, note=note,
            usage=usage, attempts=req.attempt + 1,
            guardrail=None if kept else (junk or "no supported sentence"),
        )


def without_echo(text: str, messages) -> str:
    """``text`` without the sentences that repeat the prompt's instructions (see the module doc)."""
    instructions = [*TEMPLATES, *INSTRUCTIONS.values()]
    instructions += [m["content"] for m in messages or () if m.get("role") == "system"]
    sentences = split_sentences(text)
    kept = [s for s in sentences if not echoes(s, instructions)]
    return text if len(kept) == len(sentences) else _join(kept)


def _join(sentences) -> str:
    """Kept sentences back into text; a code block stands on its own lines."""
    out = ""
    for s in sentences:
        sep = "" if not out else ("\n\n" if s.startswith("```") or out.endswith("```") else " ")
        out += sep + s
    return out


def _salvage(text: str, junk: str | None) -> str:
    """What can be shown of an answer that failed the junk check on its last attempt."""
    if junk == "looping answer":
        cut = find_loop(text)
        return text[:cut].rstrip() + " …" if cut else text
    if junk is not None and not text:
        return "Sorry, I could not produce an answer to that. Try rephrasing the question."
    return text
