"""The graph a Pipeline is made of: nodes (operators or parallel groups) and typed edges."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from studio_nb.kernel.group import ParallelGroup
from studio_nb.kernel.operator import Operator
from studio_nb.kernel.policy import DEFAULT_POLICY, Policy
from studio_nb.kernel.typing_utils import acceptor


@dataclass(eq=False)
class Node:
    """A place in the graph. ``kind``: operator | group | branch | join."""

    name: str
    op: Operator | ParallelGroup
    kind: str = "operator"
    group: str | None = None  # for branch/join nodes: the group they belong to
    enabled: bool = True
    out_edges: list["Edge"] = field(default_factory=list)
    in_edges: list["Edge"] = field(default_factory=list)
    members: list["Node"] = field(default_factory=list)  # group: branch nodes
    join: "Node | None" = None  # group: its join node

    @property
    def input_type(self) -> Any:
        return self.op.input_type

    @property
    def output_type(self) -> Any:
        return self.op.output_type

    @property
    def policy(self) -> Policy:
        return self.op.policy if isinstance(self.op, Operator) else DEFAULT_POLICY

    @property
    def is_group(self) -> bool:
        return self.kind == "group"

    @property
    def top_level(self) -> bool:
        return self.kind in ("operator", "group")


@dataclass(eq=False)
class Edge:
    src: Node
    dst: Node
    feedback: bool = False
    max_loops: int | None = None
    accepts: Callable[[Any], bool] = field(init=False)

    def __post_init__(self) -> None:
        self.accepts = acceptor(self.dst.input_type)

    @property
    def key(self) -> tuple[str, str]:
        return (self.src.name, self.dst.name)

    def describe(self) -> str:
        from studio_nb.kernel.typing_utils import type_name

        arrow = f"-. feedback (max {self.max_loops}) .->" if self.feedback else "->"
        return f"{self.src.name} {arrow} {self.dst.name} ({type_name(self.dst.input_type)})"
