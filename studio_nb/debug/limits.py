"""What a user of a shared server may change in a replay: one allow-list, with bounds.

A replay (``pipe.replay(turn, params=...)``, the WebSocket's ``replay`` frame) builds the
operators it changes with new constructor parameters. In a notebook on your own data dir
that is your business. On a server the same request comes from one of many users, and the
parameters decide what the turn costs everybody: ``max_tokens`` and ``synthesis_tokens``
how long the shared model is held, ``stop_on_loop=False`` whether a looping answer is
cut. So a request that names a user goes through :func:`check_replay_params`:

- only the parameters listed in :data:`RULES` may be changed — the ones that shape an
  answer (modes, how much evidence, sampling); anything else (``stop_on_loop``,
  ``n_ctx``, ``max_attempts``) is refused with the list of what may be;
- each value is checked for its kind and its bounds, and a *cost* parameter may be lowered
  but never raised above what the server's own configuration gives that node: the node's
  configured value is the ceiling (``max_tokens: 1800`` on a server configured with 256
  is refused, 64 is fine);
- the answer-mode, search-mode and intent-mode choices are the ones the session
  variants offer (``debug/variants.py``), so a replay can do what the page's settings can
  and no more.

The rules are found by operator class (and its bases), so a custom pipeline YAML whose
nodes have other names gets the same limits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from studio_nb.errors import ConfigError

#: most nodes and params one replay may change (a replay names a handful)
MAX_CHANGED = 32


@dataclass(frozen=True)
class Rule:
    """How one parameter may be set remotely.

    ``kind`` is "int", "float", "bool" or "choice"; ``low``/``high`` bound numbers;
    ``ceiling_is_configured`` makes the node's configured value the upper bound (a cost).
    """

    kind: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    ceiling_is_configured: bool = False

    def check(self, value: Any, configured: Any, where: str) -> Any:
        if self.kind == "choice":
            if value not in self.choices:
                raise ConfigError(f"{where} must be one of {', '.join(self.choices)}, got {value!r:.60}")
            return value
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise ConfigError(f"{where} must be true or false, got {value!r:.60}")
            return value
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not numeric or (self.kind == "int" and not float(value).is_integer()) or not math.isfinite(value):
            raise ConfigError(f"{where} must be {'a whole number' if self.kind == 'int' else 'a number'}, "
                              f"got {value!r:.60}")
        high = self.high
        if self.ceiling_is_configured and isinstance(configured, (int, float)):
            high = configured if high is None else min(high, configured)
        if (self.low is not None and value < self.low) or (high is not None and value > high):
            ceiling = " (the server's configured value)" if self.ceiling_is_configured else ""
            raise ConfigError(f"{where} must be between {self.low:g} and {high:g}{ceiling}, got {value!r:.60}")
        return int(value) if self.kind == "int" else float(value)


_ANSWER_MODES = ("grounded", "extractive", "generative")
_SEARCH_MODES = ("dense", "lexical", "hybrid")
_INTENT_MODES = ("keyword", "embedding", "hybrid")

#: operator class name -> parameter -> rule (see the module docstring)
RULES: dict[str, dict[str, Rule]] = {
    "PromptBuilderOp": {
        "max_tokens": Rule("int", 1, None, ceiling_is_configured=True),
        "synthesis_tokens": Rule("int", 1, None, ceiling_is_configured=True),
        "max_doc_chars": Rule("int", 0, 4000),
        "history_turns": Rule("int", 0, None, ceiling_is_configured=True),
        "temperature": Rule("float", 0, 2),
        "retry_temperature": Rule("float", 0, 2),
        "seed": Rule("int", 0, 2**31 - 1),
        "mode": Rule("choice", choices=_ANSWER_MODES),
    },
    "EvidenceOp": {
        "mode": Rule("choice", choices=_ANSWER_MODES),
        "min_score": Rule("float", 0, 1),
        "question_min_score": Rule("float", 0, 1),
        "code_min_score": Rule("float", 0, 1),
    },
    "GroundingGuardOp": {
        "mode": Rule("choice", choices=_ANSWER_MODES),
        "retry_unsupported": Rule("bool"),
    },
    "KnowledgeRAGOp": {
        "k": Rule("int", 1, 20),
        "mode": Rule("choice", choices=_SEARCH_MODES),
        "min_confidence": Rule("float", 0, 1),
    },
    "IntentRouterOp": {"mode": Rule("choice", choices=_INTENT_MODES)},
    "TokenBudgetGuardOp": {"min_answer_tokens": Rule("int", 1, None, ceiling_is_configured=True)},
}


def rules_for(op: Any) -> dict[str, Rule]:
    """The rules for ``op``'s class, inherited from the first listed base class."""
    for cls in type(op).__mro__:
        if cls.__name__ in RULES:
            return RULES[cls.__name__]
    return {}


def check_replay_params(pipeline: Any, params: Any) -> dict[str, dict[str, Any]]:
    """``params`` ({node: {param: value}}) if a server user may replay with them, else ConfigError.

    Returns the values as checked (whole numbers as int). ``pipeline`` is the kernel
    Pipeline whose configured operators give the ceilings.
    """
    if not isinstance(params, dict):
        raise ConfigError("replay params must map node names to {param: value} objects")
    if sum(len(v) if isinstance(v, dict) else 1 for v in params.values()) > MAX_CHANGED:
        raise ConfigError(f"a replay may change at most {MAX_CHANGED} parameters")
    out: dict[str, dict[str, Any]] = {}
    for node_name, changes in params.items():
        node = pipeline.nodes.get(node_name) if isinstance(node_name, str) else None
        if node is None or node.is_group:
            raise ConfigError(f"no operator node {node_name!r:.60} to replay with params; "
                              f"nodes: {', '.join(n for n, x in pipeline.nodes.items() if not x.is_group)}")
        if not isinstance(changes, dict):
            raise ConfigError(f"params for {node_name!r} must be a {{param: value}} object")
        rules = rules_for(node.op)
        checked = {}
        for key, value in changes.items():
            rule = rules.get(key)
            if rule is None:
                allowed = ", ".join(sorted(rules)) or "none"
                raise ConfigError(f"{node_name}.{key!s:.60} cannot be changed in a replay on this server; "
                                  f"{node_name} allows: {allowed}")
            checked[key] = rule.check(value, node.op.config.get(key), f"{node_name}.{key}")
        out[node_name] = checked
    return out


__all__ = ["MAX_CHANGED", "RULES", "Rule", "check_replay_params", "rules_for"]
