"""PromptBuilderOp: the chat messages for the model, by answer mode and intent.

Layout matters for speed: llama.cpp reuses the KV cache for the longest common prefix
with the previous prompt, so the system prompt (fixed per mode and intent) comes first,
then the session's earlier turns (which only grow at the end), and everything that
changes per question (evidence or sources, tool results, the question) comes last.

In ``grounded`` mode (the default) the model sees only the best of the selected evidence
(``evidence_chars``, about 450 characters: the first passages, the last one cut) instead of
whole chunks, so prefill is short, and is asked for one sentence citing it, in the language
of the question (the evidence operator only lets the model write in a language it writes
well). The user reads all the evidence anyway; the synthesis only has to say the answer. Without evidence (chit-chat, a coding request)
and in ``generative`` mode it sees the whole retrieved chunks, as before.
"""

from __future__ import annotations

from dataclasses import replace

from studio_nb.kernel import Operator
from studio_nb.messages import ContextEnrichedMessage, LLMRequest, Regenerate
from studio_nb.services.intent.types import Intent

BASE = "You are the assistant of SAGE Studio in Jupyter. Answer briefly and accurately, in the language of the question."

INSTRUCTIONS = {  # keyed by Intent value
    "KNOWLEDGE_QUERY": "Use the numbered sources in the message and cite them like [1]. "
    "If the sources do not answer the question, say so.",
    "SAGE_CODING": "Help with Python and SAGE code: a short explanation and a code block. "
    "The numbered sources are examples; cite them like [1].",
    "SYSTEM_OPERATION": "Tool results are given in the message. Report them plainly, for example: The result is 42.",
    "GENERAL_CHAT": "Chat in a friendly way, in one or two sentences.",
}

GROUNDED = (
    "You answer questions using only the numbered evidence in the message. Write one short "
    "sentence {language}, reuse the exact names and numbers of the evidence, "
    "and cite it like [1]. If the evidence does not answer the question, say so."
)
#: how GROUNDED names the answer's language, by the question's
LANGUAGE = {"en": "in English", "zh": "in Chinese (中文)"}

GROUNDED_CODE = (
    "You help with Python and SAGE code using the numbered evidence in the message. Give one short "
    "sentence and, if code is asked for, one short code block. Use only the functions, classes and "
    "options that appear in the evidence, and cite it like [1]."
)

RETRY_HINT = "Your previous answer was unusable ({reason}). Answer again in plain, short sentences without repeating yourself."
GROUNDED_RETRY_HINT = "Your previous answer was not supported by the evidence ({reason}). Answer again using only what the evidence says."

#: every instruction text a prompt can carry (the grounding guard removes any of it from an answer)
TEMPLATES = (BASE, GROUNDED, GROUNDED_CODE, RETRY_HINT, GROUNDED_RETRY_HINT)


def system_prompt(intent: str) -> str:
    return f"{BASE} {INSTRUCTIONS.get(intent, INSTRUCTIONS['GENERAL_CHAT'])}"


def render_messages(
    ctx: ContextEnrichedMessage,
    *,
    history_turns: int = 4,
    max_doc_chars: int = 700,
    retry_reason: str | None = None,
    mode: str = "generative",
    evidence_chars: int = 450,
) -> tuple[dict[str, str], ...]:
    """The chat messages for ``ctx``; shared by the builder and the token budget guard."""
    if mode == "grounded" and ctx.evidence:
        return _grounded_messages(ctx, retry_reason, evidence_chars)
    routed = ctx.routed
    messages = [{"role": "system", "content": system_prompt(routed.intent)}]
    recent = ctx.memory.recent[-history_turns:] if history_turns else ()
    for turn in recent:
        messages.append({"role": "user", "content": turn.question})
        messages.append({"role": "assistant", "content": turn.answer[:max_doc_chars]})
    parts = []
    if ctx.documents:
        lines = ["Sources:"]
        for i, doc in enumerate(ctx.documents, 1):
            text = doc.text if len(doc.text) <= max_doc_chars else doc.text[:max_doc_chars] + " …"
            lines.append(f"[{i}] {doc.path}{' § ' + doc.heading if doc.heading else ''}\n{text}")
        parts.append("\n\n".join(lines))
    if ctx.tool_results:
        lines = ["Tool results:"]
        for t in ctx.tool_results:
            args = ", ".join(f"{k}={v!r}" for k, v in t.arguments.items())
            lines.append(f"- {t.name}({args}) = " + (f"error: {t.error}" if t.error else f"{t.result}"))
        parts.append("\n".join(lines))
    if ctx.memory.recalled:
        lines = ["Earlier in this conversation:"]
        lines.extend(f"- Q: {t.question}\n  A: {t.answer[:max_doc_chars]}" for t in ctx.memory.recalled)
        parts.append("\n".join(lines))
    question = routed.content
    if retry_reason:
        question += "\n\n" + RETRY_HINT.format(reason=retry_reason)
    parts.append(f"Question: {question}" if parts else question)
    messages.append({"role": "user", "content": "\n\n".join(parts)})
    return tuple(messages)


def best_evidence(pieces, limit: int) -> list[tuple[int, str]]:
    """``(n, text)`` of the first pieces within ``limit`` characters; the last one cut at a word."""
    out, used = [], 0
    for p in pieces:
        room = limit - used
        if room < 60 and out:
            break
        text = p.text if len(p.text) <= room else p.text[:room].rsplit(" ", 1)[0] + " …"
        out.append((p.n, text))
        used += len(text)
    return out


def _grounded_messages(ctx: ContextEnrichedMessage, retry_reason: str | None,
                       evidence_chars: int = 450) -> tuple[dict[str, str], ...]:
    """System rule, then the best evidence and the question: nothing else competes for the small model's attention."""
    from studio_nb.messages import is_chinese

    lines = ["Evidence:"] + [f"[{n}] {text}" for n, text in best_evidence(ctx.evidence.pieces, evidence_chars)]
    question = ctx.routed.content
    if retry_reason:
        question += "\n\n" + GROUNDED_RETRY_HINT.format(reason=retry_reason)
    user = "\n".join(lines) + f"\n\nQuestion: {question}"
    language = LANGUAGE["zh" if is_chinese(ctx.routed.content) else "en"]
    system = GROUNDED_CODE if ctx.routed.intent == Intent.SAGE_CODING.value else GROUNDED.format(language=language)
    return ({"role": "system", "content": system}, {"role": "user", "content": user})


class PromptBuilderOp(Operator):
    """Builds the LLMRequest; on a ``Regenerate`` it rebuilds with a retry hint and a
    little sampling temperature so a rejected greedy answer is not simply repeated.

    ``synthesis_tokens`` caps the answer in grounded mode (one sentence; ``evidence_chars``
    of evidence are shown to the model);
    ``max_tokens`` applies otherwise.
    """

    def __init__(
        self,
        max_tokens: int = 256,
        temperature: float = 0.0,
        seed: int = 0,
        history_turns: int = 4,
        max_doc_chars: int = 700,
        retry_temperature: float = 0.7,
        mode: str = "grounded",
        synthesis_tokens: int = 48,
        evidence_chars: int = 450,
    ) -> None:
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.seed = seed
        self.history_turns = history_turns
        self.max_doc_chars = max_doc_chars
        self.retry_temperature = retry_temperature
        self.mode = mode
        self.synthesis_tokens = synthesis_tokens
        self.evidence_chars = evidence_chars

    def process(self, msg: ContextEnrichedMessage | Regenerate) -> LLMRequest:
        options = {"history_turns": self.history_turns, "max_doc_chars": self.max_doc_chars, "mode": self.mode,
                   "evidence_chars": self.evidence_chars}
        if isinstance(msg, Regenerate):
            previous = msg.request
            options["retry_reason"] = msg.reason
            return replace(
                previous,
                messages=render_messages(previous.context, **options),
                render_options=options,
                attempt=previous.attempt + 1,
                temperature=max(previous.temperature, self.retry_temperature),
                seed=self.seed + previous.attempt + 1,
                prompt_tokens=0,
            )
        messages = render_messages(msg, **options)
        short = self.mode == "grounded" and bool(msg.evidence) and msg.routed.intent != Intent.SAGE_CODING.value
        max_tokens = min(self.max_tokens, self.synthesis_tokens) if short else self.max_tokens
        return LLMRequest(msg, messages, max_tokens, self.temperature, self.seed, render_options=options)
