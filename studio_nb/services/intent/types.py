"""The vocabulary of the intent router: the four intents and the result record.

Kept apart from the scorers so that operators and front ends can import the types
without pulling in regex tables, numpy or the embedding model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum

from studio_nb.errors import ConfigError

MODES = ("keyword", "embedding", "llm", "hybrid")


class Intent(str, Enum):
    """What the user wants; decides which branches of the Studio pipeline run."""

    KNOWLEDGE_QUERY = "KNOWLEDGE_QUERY"  # retrieve from knowledge domains, then answer
    SAGE_CODING = "SAGE_CODING"  # write / fix / explain code (examples + docs)
    SYSTEM_OPERATION = "SYSTEM_OPERATION"  # run a tool: calculator, clock, files, domains, history
    GENERAL_CHAT = "GENERAL_CHAT"  # small talk: answer directly, no retrieval

    @classmethod
    def parse(cls, value: "Intent | str") -> "Intent":
        """Accept an Intent or its name in any case; a ConfigError lists the valid names."""
        if isinstance(value, Intent):
            return value
        key = str(value).strip().upper()
        try:
            return cls[key]
        except KeyError:
            valid = ", ".join(i.value for i in cls)
            raise ConfigError(f"unknown intent {value!r}; use one of: {valid}") from None


INTENTS: tuple[Intent, ...] = tuple(Intent)


@dataclass(frozen=True)
class IntentResult:
    """One classification: the intent, how sure we are, where to look, and why.

    ``stages`` holds one dict per stage (keyword, embedding, fusion, llm, domains) with
    its per-intent scores, so a notebook user can see how the decision was reached.
    """

    intent: Intent
    confidence: float
    domains: tuple[str, ...]
    matched_keywords: tuple[str, ...]
    mode: str
    stages: tuple[dict, ...]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["intent"] = self.intent.value
        d["stages"] = list(self.stages)
        return d

    def stage(self, name: str) -> dict | None:
        """The entry of stage ``name`` (or None if that stage did not run)."""
        return next((t for t in self.stages if t.get("stage") == name), None)
