"""Junk detection for generated text: loops, a character repeated, mostly symbols, nothing.

Small models loop ("the pipeline the pipeline the pipeline ...") and sometimes emit
strings of symbols. These checks are cheap enough to run while tokens stream (the LLM
operator stops a looping answer early) and again on the finished text (the grounding
guard drops a looping sentence).
"""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+", re.UNICODE)


def find_loop(text: str, n: int = 4, repeats: int = 3) -> int | None:
    """Index where ``text`` starts looping (an n-gram of words seen ``repeats`` times), else None.

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


def junk_reason(text: str, *, min_chars: int = 2) -> str | None:
    """Why ``text`` is unusable as an answer, or None if it is fine."""
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


#: how a prompt labels its parts; a line of the answer that starts with one is the prompt shown back
_PROMPT_LABELS = re.compile(r"^\s*(?:evidence|question|sources|tool results|earlier in this conversation)\s*:", re.I)


def echoes(sentence: str, instructions: list[str] | tuple[str, ...], n: int = 5) -> bool:
    """True when ``sentence`` repeats the instructions the model was given (``n`` of their words
    in a row) or starts with one of the prompt's labels ("Question:", "Evidence:"). A small
    model that cannot answer sometimes writes its prompt back; none of it is an answer."""
    if _PROMPT_LABELS.match(sentence):
        return True
    words = [w.lower() for w in _WORD.findall(sentence)]
    if len(words) < n:
        return False
    grams = {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}
    for text in instructions:
        said = [w.lower() for w in _WORD.findall(text)]
        if any(tuple(said[i : i + n]) in grams for i in range(len(said) - n + 1)):
            return True
    return False
