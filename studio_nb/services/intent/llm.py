"""Ask the chat model for the intent, its output constrained by a GBNF grammar.

The grammar lets the model emit only one of four answer words, each mapped to a label,
so the answer never needs free-text parsing and can never be anything else. Plain words
("question", "code", "action", "chat") instead of the label names, and few-shot
examples as earlier chat turns, because that is what a tiny instruct model follows best:
on 24 dev messages SmolLM2-135M scored 2/24 with the label names and a system prompt,
8/24 with words, 13/24 with words + turns (bench/intent_eval.py has the full numbers;
a 135M model is still weak at this, a bigger GGUF does better with the same code).

The client is any object with ``chat(messages, max_tokens=, temperature=, grammar=)``
returning a Completion (docs/contracts.md "Inference"); it is passed in, never made
here. The model reports no probability, so an llm answer gets a fixed confidence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from studio_nb.services.intent.types import INTENTS, Intent

WORDS: dict[str, Intent] = {
    "question": Intent.KNOWLEDGE_QUERY,
    "code": Intent.SAGE_CODING,
    "action": Intent.SYSTEM_OPERATION,
    "chat": Intent.GENERAL_CHAT,
}
GRAMMAR = "root ::= " + " | ".join(f'"{w}"' for w in WORDS) + "\n"
LLM_CONFIDENCE = 0.5
MAX_TOKENS = 4  # every answer word is one or two tokens

SYSTEM_PROMPT = "Reply with one word: question, code, action or chat."
# Earlier turns the model imitates; kept stable and first so llama.cpp reuses the KV cache.
SHOTS = (
    ("what is an operator in SAGE?", "question"),
    ("write a python function that reverses a list", "code"),
    ("compute 12*7", "action"),
    ("thanks, bye!", "chat"),
    ("list the files in my folder", "action"),
    ("why does my map function raise KeyError?", "code"),
    ("hello", "chat"),
    ("算子是什么意思？", "question"),
)


@dataclass(frozen=True)
class LLMLabel:
    intent: Intent | None  # None: the backend ignored the grammar and said something else
    raw: str


def build_messages(text: str) -> list[dict]:
    messages = [{"role": "system", "content": SYSTEM_PROMPT}]
    for question, answer in SHOTS:
        messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return messages + [{"role": "user", "content": text}]


def parse_label(raw: str) -> Intent | None:
    """The intent named in ``raw`` by answer word or label name (backends that ignore
    grammars may wrap it in prose); None if there is none."""
    cleaned = raw.strip().lower()
    if cleaned in WORDS:
        return WORDS[cleaned]
    for intent in INTENTS:
        if intent.value.lower() in cleaned:
            return intent
    found = {WORDS[w] for w in re.findall(r"[a-z]+", cleaned) if w in WORDS}
    return found.pop() if len(found) == 1 else None


class LLMLabeler:
    """One grammar-constrained completion per message."""

    def __init__(self, llm, *, max_tokens: int = MAX_TOKENS) -> None:
        self.llm = llm
        self.max_tokens = max_tokens

    def warm_up(self) -> None:
        warm = getattr(self.llm, "warm_up", None)
        if callable(warm):
            warm()

    def label(self, text: str) -> LLMLabel:
        completion = self.llm.chat(build_messages(text), max_tokens=self.max_tokens, temperature=0.0, grammar=GRAMMAR)
        raw = getattr(completion, "text", completion)
        raw = raw if isinstance(raw, str) else str(raw)
        return LLMLabel(parse_label(raw), raw)
