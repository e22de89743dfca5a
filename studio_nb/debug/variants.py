"""Per-session variants: one user's session tries another way to answer, nobody else's changes.

A *setting* changes a parameter of the operators that have it — the intent mode of the
router, the search mode of retrieval, the answer mode (grounded / extractive / generative)
of the evidence, prompt and grounding operators together, since they only make sense as
one choice. An *operator* variant puts another registered operator with the same sockets
in a node's place. Both become per-request operator overrides (``RequestContext.overrides``,
built by ``Pipeline.override``): the shared pipeline is never touched, so other sessions
keep theirs. Settings find their operators by class, so a custom pipeline YAML with other
node names still gets them.
"""

from __future__ import annotations

import inspect
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from studio_nb.errors import ConfigError
from studio_nb.kernel import registry

#: variants kept in memory (least recently used sessions dropped first)
MAX_SESSIONS = 10_000


@dataclass(frozen=True)
class Setting:
    name: str
    label: str
    options: tuple[str, ...]
    #: operator class name -> the parameter of it the setting sets
    params: dict[str, str]


SETTINGS = {
    s.name: s
    for s in (
        Setting("intent_mode", "intent mode", ("keyword", "embedding", "hybrid", "llm"), {"IntentRouterOp": "mode"}),
        Setting("search_mode", "search mode", ("dense", "lexical", "hybrid"), {"KnowledgeRAGOp": "mode"}),
        Setting("answer_mode", "answer mode", ("grounded", "extractive", "generative"),
                {"EvidenceOp": "mode", "PromptBuilderOp": "mode", "GroundingGuardOp": "mode"}),
    )
}


@dataclass
class _Choice:
    settings: dict[str, str]
    operators: dict[str, str]


class SessionVariants:
    """The variants each (user, session) chose; see the module docstring."""

    def __init__(self, pipeline: Any, config: dict[str, Any]) -> None:
        self.pipeline = pipeline
        self.config = config
        self._chosen: OrderedDict[tuple[str, str], _Choice] = OrderedDict()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ what exists
    def _nodes_of(self, setting: Setting) -> dict[str, str]:
        """node name -> parameter, for the nodes whose operator class the setting covers."""
        return {n.name: setting.params[type(n.op).__name__] for n in self.pipeline.nodes.values()
                if not n.is_group and type(n.op).__name__ in setting.params}

    def options(self, name: str) -> tuple[str, ...]:
        setting = SETTINGS[name]
        if name == "intent_mode" and not self.config.get("intent_llm"):
            return tuple(o for o in setting.options if o != "llm")  # needs a model configured for it
        return setting.options

    def default(self, name: str) -> str:
        """What the pipeline does without a variant (the configuration's value)."""
        return str(self.config.get(name) or SETTINGS[name].options[-1])

    def describe(self, session_id: str | None, user: str | None) -> dict[str, Any]:
        """Every setting (options, current value, nodes) and every node's operator choices."""
        choice = self._get(session_id, user)
        settings = []
        for name, s in SETTINGS.items():
            nodes = self._nodes_of(s)
            if nodes:
                settings.append({"name": name, "label": s.label, "options": list(self.options(name)),
                                 "value": choice.settings.get(name, self.default(name)),
                                 "default": self.default(name), "nodes": sorted(nodes)})
        operators = {}
        for node in self.pipeline.nodes.values():
            if node.is_group:
                continue
            operators[node.name] = {"default": type(node.op).__name__,
                                    "current": choice.operators.get(node.name, type(node.op).__name__),
                                    "options": [type(node.op).__name__, *self.pipeline.alternatives(node.name)]}
        return {"settings": settings, "operators": operators}

    # ------------------------------------------------------------------ choosing
    def set_setting(self, name: str, value: str | None, *, session_id: str, user: str) -> dict[str, Any]:
        """Choose ``value`` for setting ``name`` in this session (None: back to the default)."""
        if name not in SETTINGS:
            raise ConfigError(f"unknown setting {name!r}; settings: {', '.join(SETTINGS)}")
        if value is not None and value not in self.options(name):
            raise ConfigError(f"{name} must be one of {', '.join(self.options(name))}, got {value!r}")
        choice = self._get(session_id, user)
        if value is None or value == self.default(name):
            choice.settings.pop(name, None)
        else:
            choice.settings[name] = value
        return self._choose(session_id, user, choice)

    def set_operator(self, node: str, operator: str | None, *, session_id: str, user: str) -> dict[str, Any]:
        """Put registered operator ``operator`` in ``node``'s place for this session (None: the default)."""
        n = self.pipeline._node(node)
        own = type(n.op).__name__
        if operator is not None and operator != own and operator not in self.pipeline.alternatives(node):
            raise ConfigError(f"{operator!r} cannot stand in for {node!r}; operators that can: "
                              f"{', '.join(self.pipeline.alternatives(node)) or 'none registered'}")
        choice = self._get(session_id, user)
        if operator is None or operator == own:
            choice.operators.pop(node, None)
        else:
            choice.operators[node] = operator
        return self._choose(session_id, user, choice)

    def _choose(self, session_id: str, user: str, choice: _Choice) -> dict[str, Any]:
        self._build(self._specs(choice))  # a combination that cannot be built fails here, not mid-turn
        with self._lock:
            self._chosen.pop((user, session_id), None)
            if choice.settings or choice.operators:
                self._chosen[(user, session_id)] = choice
                while len(self._chosen) > MAX_SESSIONS:
                    self._chosen.popitem(last=False)
        return self.describe(session_id, user)

    def specs(self, session_id: str | None, user: str | None) -> dict[str, dict[str, Any]]:
        """node -> {"operator": class name or None, "params": {...}} for this session's variants."""
        return self._specs(self._get(session_id, user))

    def _specs(self, choice: _Choice) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {node: {"operator": cls, "params": {}} for node, cls in choice.operators.items()}
        for name, value in choice.settings.items():
            for node, param in self._nodes_of(SETTINGS[name]).items():
                out.setdefault(node, {"operator": None, "params": {}})["params"][param] = value
        return out

    def overrides(self, session_id: str | None, user: str | None,
                  extra_params: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
        """The operators that stand in for nodes in this session's requests (plus, for a
        replay, ``extra_params`` on top)."""
        specs = self.specs(session_id, user)
        for node, params in (extra_params or {}).items():
            specs.setdefault(node, {"operator": None, "params": {}})["params"].update(params)
        return self._build(specs)

    def _build(self, specs: dict[str, dict[str, Any]]) -> dict[str, Any]:
        out = {}
        for node, spec in specs.items():
            params = spec["params"]
            if spec["operator"] is not None:  # another class: keep only the params it takes
                takes = inspect.signature(registry.get(spec["operator"]).__init__).parameters
                params = {k: v for k, v in params.items() if k in takes}
            out[node] = self.pipeline.override(node, params=params, operator=spec["operator"])
        return out

    # ------------------------------------------------------------------ storage
    def _get(self, session_id: str | None, user: str | None) -> _Choice:
        if session_id is None or user is None:
            return _Choice({}, {})
        with self._lock:
            choice = self._chosen.get((user, session_id))
            return _Choice(dict(choice.settings), dict(choice.operators)) if choice else _Choice({}, {})


__all__ = ["SETTINGS", "SessionVariants", "Setting"]
