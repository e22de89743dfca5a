"""ContextJoinOp: merge the parallel branches' results into one ContextEnrichedMessage."""

from __future__ import annotations

from studio_nb.kernel import Branches, Operator
from studio_nb.messages import ContextEnrichedMessage, MemoryContext, Source, ToolResult


class ContextJoinOp(Operator):
    """Picks results by their type, not by branch name, so branches can be renamed or
    swapped; optional branches that failed are recorded as ``degraded`` reasons."""

    def process(self, msg: Branches) -> ContextEnrichedMessage:
        memory, documents, tools = MemoryContext(), (), ()
        for value in msg.results.values():
            if isinstance(value, MemoryContext):
                memory = value
            elif isinstance(value, tuple) and value and isinstance(value[0], Source):
                documents = value
            elif isinstance(value, tuple) and value and isinstance(value[0], ToolResult):
                tools = value
        return ContextEnrichedMessage(msg.input, memory, documents, tools, tuple(sorted(msg.errors.items())))
