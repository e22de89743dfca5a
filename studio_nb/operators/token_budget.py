"""TokenBudgetGuardOp: make the prompt fit the model's context before inference.

Counting uses the model's own tokenizer and chat template (a Chinese character can be
two tokens; a character-based guess would overflow). When the prompt is too long the
least useful context goes first: the lowest-scored source, then recalled older turns,
then the oldest recent turns, then tool results. If the question alone does not fit,
the user gets a clear error instead of a truncated question.
"""

from __future__ import annotations

from dataclasses import replace

from studio_nb.errors import BudgetExceededError
from studio_nb.kernel import Operator
from studio_nb.messages import ContextEnrichedMessage, LLMRequest, MemoryContext
from studio_nb.operators.prompt_builder import render_messages


def _trim_once(ctx: ContextEnrichedMessage) -> tuple[ContextEnrichedMessage, str] | None:
    """Drop the least useful piece of context; None when only the question is left."""
    if ctx.evidence is not None and len(ctx.evidence.pieces) > 1:
        pieces = ctx.evidence.pieces
        worst = min(range(len(pieces)), key=lambda i: pieces[i].score)
        kept = pieces[:worst] + pieces[worst + 1 :]
        return replace(ctx, evidence=replace(ctx.evidence, pieces=kept)), f"evidence [{pieces[worst].n}]"
    if ctx.documents:
        worst = min(range(len(ctx.documents)), key=lambda i: ctx.documents[i].score)
        doc = ctx.documents[worst]
        docs = ctx.documents[:worst] + ctx.documents[worst + 1 :]
        return replace(ctx, documents=docs), f"source {doc.path} (score {doc.score:.3f})"
    if ctx.memory.recalled:
        return replace(ctx, memory=MemoryContext(ctx.memory.recent, ctx.memory.recalled[1:])), "a recalled turn"
    if ctx.memory.recent:
        return replace(ctx, memory=MemoryContext(ctx.memory.recent[1:], ())), "the oldest recent turn"
    if ctx.tool_results:
        return replace(ctx, tool_results=ctx.tool_results[:-1]), f"tool result {ctx.tool_results[-1].name}"
    return None


class TokenBudgetGuardOp(Operator):
    """Counts prompt tokens and trims context until prompt + answer fit in ``n_ctx``."""

    blocking = True  # tokenizing is CPU work

    def __init__(self, n_ctx: int | None = None, min_answer_tokens: int = 32) -> None:
        self.n_ctx = n_ctx
        self.min_answer_tokens = min_answer_tokens
        self.client = None

    def warm_up(self) -> None:
        self.client = self.need("llm")
        self.client.warm_up()

    def budget(self, req: LLMRequest) -> int:
        n_ctx = self.n_ctx or self.client.n_ctx
        return n_ctx - req.max_tokens

    def process(self, msg: LLMRequest) -> LLMRequest:
        budget = self.budget(msg)
        ctx, messages, trimmed = msg.context, msg.messages, list(msg.trimmed)
        tokens = self.client.count_chat_tokens(list(messages))
        while tokens > budget:
            step = _trim_once(ctx)
            if step is None:
                n_ctx = budget + msg.max_tokens
                if tokens <= n_ctx - self.min_answer_tokens:  # shorten the answer instead
                    return replace(
                        msg, context=ctx, messages=messages, prompt_tokens=tokens,
                        max_tokens=n_ctx - tokens, trimmed=tuple(trimmed),
                    )
                raise BudgetExceededError(
                    f"the question alone needs {tokens} tokens but the model's context holds {n_ctx} "
                    f"(with room for at least {self.min_answer_tokens} answer tokens); shorten the question "
                    "or configure a model with a larger n_ctx"
                )
            ctx, what = step
            trimmed.append(what)
            messages = render_messages(ctx, **msg.render_options)
            tokens = self.client.count_chat_tokens(list(messages))
        return replace(msg, context=ctx, messages=messages, prompt_tokens=tokens, trimmed=tuple(trimmed))
