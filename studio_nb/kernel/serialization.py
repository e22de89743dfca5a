"""Pipelines as plain data (and so YAML): nodes with params and policies, then edges.

    name: demo
    source: upper
    nodes:
      - {name: upper, operator: Upper}
      - {name: ctx, group: [memory, rag], join: ctx_join}
      - {name: memory, operator: MemoryLoaderOp, params: {window: 6}, policy: {optional: true}}
    edges:
      - {from: upper, to: ctx}
      - {from: guardrail, to: prompt_builder, feedback: true, max_loops: 2}

Group members are listed as ordinary nodes and referenced by name from the group.
"""

from __future__ import annotations

import json
from typing import Any

from studio_nb.kernel.errors import ConfigError, WiringError
from studio_nb.kernel import registry
from studio_nb.kernel.group import ParallelGroup
from studio_nb.kernel.operator import Operator
from studio_nb.kernel.policy import Policy

FORMAT_VERSION = 1


def _operator_entry(node: Any) -> dict[str, Any]:
    op: Operator = node.op
    entry: dict[str, Any] = {"name": node.name, "operator": registry.registered_name(type(op))}
    params = op.config
    if params:
        try:
            json.dumps(params)
        except TypeError as exc:
            raise ConfigError(
                f"operator {node.name!r} has config that is not JSON-able ({exc}); "
                "pass plain values to __init__ and build objects in warm_up()"
            ) from None
        entry["params"] = params
    if not op.policy.is_default:
        entry["policy"] = op.policy.to_dict()
    if not node.enabled:
        entry["enabled"] = False
    return entry


def pipeline_to_dict(p: Any) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = []
    for node in p.nodes.values():
        if node.is_group:
            entry: dict[str, Any] = {"name": node.name, "group": [m.name for m in node.members]}
            if node.join is not None:
                entry["join"] = node.join.name
            if not node.enabled:
                entry["enabled"] = False
            nodes.append(entry)
        else:
            nodes.append(_operator_entry(node))
    edges = []
    for e in p.edges:
        edge: dict[str, Any] = {"from": e.src.name, "to": e.dst.name}
        if e.feedback:
            edge.update(feedback=True, max_loops=e.max_loops)
        edges.append(edge)
    return {
        "version": FORMAT_VERSION,
        "name": p.name,
        "source": p.source.name if p.source else None,
        "nodes": nodes,
        "edges": edges,
    }


def build_operator(entry: dict[str, Any]) -> Operator:
    """Instantiate one operator entry (``operator``, ``params``, ``policy``, ``name``)."""
    try:
        cls = registry.get(entry["operator"], imports=True)  # a YAML the user chose
    except KeyError:
        raise ConfigError(f"node {entry.get('name')!r} has no 'operator'") from None
    params = entry.get("params") or {}
    if not isinstance(params, dict):
        raise ConfigError(f"node {entry['name']!r}: params must be a mapping")
    try:
        return cls(**params, name=entry["name"], policy=Policy.from_dict(entry.get("policy")))
    except TypeError as exc:
        raise ConfigError(f"node {entry['name']!r}: bad params for {cls.__name__}: {exc}") from exc


def pipeline_from_dict(data: dict[str, Any], engine: Any = None, *, pipeline_class: type) -> Any:
    """A ``pipeline_class`` (``Pipeline``, which calls this) built from ``pipeline_to_dict``'s data."""
    version = data.get("version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise ConfigError(f"pipeline format version {version} is not supported (expected {FORMAT_VERSION})")
    entries = data.get("nodes") or []
    by_name = {}
    for entry in entries:
        if "name" not in entry:
            raise ConfigError(f"every node needs a name: {entry}")
        if entry["name"] in by_name:
            raise ConfigError(f"duplicate node name {entry['name']!r}")
        by_name[entry["name"]] = entry
    members = {m for e in entries if "group" in e for m in e["group"] + ([e["join"]] if e.get("join") else [])}
    ops = {e["name"]: build_operator(e) for e in entries if "group" not in e}
    p = pipeline_class(data.get("name", "pipeline"), engine=engine)
    disabled: list[str] = []
    for entry in entries:
        name = entry["name"]
        if name in members:
            continue
        if "group" in entry:
            missing = [m for m in entry["group"] if m not in ops]
            if missing:
                raise ConfigError(f"group {name!r} lists unknown nodes {missing}")
            join = ops[entry["join"]] if entry.get("join") else None
            p.add(ParallelGroup(name, [ops[m] for m in entry["group"]], join=join))
        else:
            p.add(ops[name])
    for entry in entries:
        if entry.get("enabled") is False:
            disabled.append(entry["name"])
    if data.get("source"):
        if data["source"] not in p.nodes:
            raise WiringError(f"source {data['source']!r} is not a node")
        p.add_source(p.nodes[data["source"]].op)
    for e in data.get("edges") or []:
        try:
            p.connect(e["from"], e["to"], feedback=bool(e.get("feedback")), max_loops=e.get("max_loops"))
        except KeyError as exc:
            raise ConfigError(f"edge {e} needs 'from' and 'to'") from exc
    for name in disabled:
        p.set_enabled(name, False)
    return p
