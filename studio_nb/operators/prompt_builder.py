"""PromptBuilderOp: intent-specific chat messages with numbered, citable sources.

Layout matters for speed: llama.cpp reuses the KV cache for the longest common prefix
with the previous prompt, so the system prompt (fixed per intent) comes first, then the
session's earlier turns (which only grow at the end), and everything that changes per
question (sources, tool results, the question) comes last.
"""

from __future__ import annotations

from dataclasses import replace

from studio_nb.kernel import Operator
from studio_nb.messages import ContextEnrichedMessage, LLMRequest, Regenerate

BASE = "You are the assistant of SAGE Studio in Jupyter. Answer briefly and accurately, in the language of the question."

INSTRUCTIONS = {
    "KNOWLEDGE_QUERY": "Use the numbered sources in the message and cite them like [1]. "
    "If the sources do not answer the question, say so.",
    "SAGE_CODING": "Help with Python and SAGE code: a short explanation and a code block. "
    "The numbered sources are examples; cite them like [1].",
    "SYSTEM_OPERATION": "Tool results are given in the message. Report them plainly, for example: The result is 42.",
    "GENERAL_CHAT": "Chat in a friendly way, in one or two sentences.",
}

RETRY_HINT = "Your previous answer was unusable ({reason}). Answer again in plain, short sentences without repeating yourself."


def system_prompt(intent: str) -> str:
    return f"{BASE} {INSTRUCTIONS.get(intent, INSTRUCTIONS['GENERAL_CHAT'])}"


def render_messages(
    ctx: ContextEnrichedMessage, *, history_turns: int = 4, max_doc_chars: int = 700, retry_reason: str | None = None
) -> tuple[dict[str, str], ...]:
    """The chat messages for ``ctx``; shared by the builder and the token budget guard."""
    routed = ctx.routed
    messages = [{"role": "system", "content": system_prompt(routed.intent)}]
    recent = ctx.memory.recent[-history_turns:] if history_turns else ()
    for turn in recent:
        messages.append({"role": "user", "content": turn["question"]})
        messages.append({"role": "assistant", "content": turn["answer"]})
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
        lines.extend(f"- Q: {t['question']}\n  A: {t['answer']}" for t in ctx.memory.recalled)
        parts.append("\n".join(lines))
    question = routed.content
    if retry_reason:
        question += "\n\n" + RETRY_HINT.format(reason=retry_reason)
    parts.append(f"Question: {question}" if parts else question)
    messages.append({"role": "user", "content": "\n\n".join(parts)})
    return tuple(messages)


class PromptBuilderOp(Operator):
    """Builds the LLMRequest; on a guardrail ``Regenerate`` it rebuilds with a retry hint
    and a little sampling temperature so a looping greedy answer is not repeated."""

    def __init__(
        self,
        max_tokens: int = 256,
        temperature: float = 0.0,
        seed: int = 0,
        history_turns: int = 4,
        max_doc_chars: int = 700,
        retry_temperature: float = 0.7,
    ) -> None:
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.seed = seed
        self.history_turns = history_turns
        self.max_doc_chars = max_doc_chars
        self.retry_temperature = retry_temperature

    def process(self, msg: ContextEnrichedMessage | Regenerate) -> LLMRequest:
        options = {"history_turns": self.history_turns, "max_doc_chars": self.max_doc_chars}
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
        return LLMRequest(msg, messages, self.max_tokens, self.temperature, self.seed, render_options=options)
