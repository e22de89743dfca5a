"""Fork/join: independent branches run concurrently and are joined into one message.

A ``ParallelGroup`` is one node of the pipeline graph. Every branch receives the same
input; the group waits for all of them and hands a ``Branches`` record (input, results,
errors of optional branches, skipped branches) to its ``join`` operator, whose output is
the group's output. Without a join the ``Branches`` record itself flows on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from studio_nb.kernel.errors import WiringError
from studio_nb.kernel.operator import Operator
from studio_nb.kernel.typing_utils import fits, type_name


@dataclass
class Branches:
    """What a ParallelGroup's branches produced for one input."""

    input: Any
    results: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.results[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self.results.get(name, default)


class ParallelGroup:
    """``ParallelGroup("context", [memory, rag, tools], join=ContextJoinOp())``."""

    def __init__(self, name: str, branches: Sequence[Operator], join: Operator | None = None) -> None:
        if not branches:
            raise WiringError(f"ParallelGroup {name!r} needs at least one branch")
        names = [b.name for b in branches]
        if len(set(names)) != len(names):
            raise WiringError(f"ParallelGroup {name!r}: branch names must be unique, got {names}")
        self.name = name
        self.branches = list(branches)
        self.join = join
        first = self.branches[0].input_type
        for b in self.branches[1:]:
            if not fits(first, b.input_type):
                raise WiringError(
                    f"ParallelGroup {name!r}: branch {b.name!r} takes {type_name(b.input_type)} but "
                    f"{self.branches[0].name!r} takes {type_name(first)}; every branch receives the same input"
                )
        if join is not None and not fits(Branches, join.input_type):
            raise WiringError(
                f"ParallelGroup {name!r}: join {join.name!r} must take Branches, takes {type_name(join.input_type)}"
            )

    @property
    def input_type(self) -> Any:
        return self.branches[0].input_type

    @property
    def output_type(self) -> Any:
        return self.join.output_type if self.join is not None else Branches

    @property
    def operators(self) -> list[Operator]:
        return self.branches + ([self.join] if self.join is not None else [])

    def __repr__(self) -> str:
        inner = ", ".join(b.name for b in self.branches)
        join = f" -> join {self.join.name}" if self.join is not None else ""
        return f"ParallelGroup({self.name!r}: [{inner}]{join})"
