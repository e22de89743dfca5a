"""The Studio operators (DESIGN §1): thin adapters between messages and services.

Importing this package registers every operator by class name for pipeline YAML (each
name ends in ``Op``); it imports no heavy library. Operators get the services they use
from the pipeline's resources (``Operator.bind``; see ``studio_nb/resources.py``) and load
them in ``warm_up``.
"""

from studio_nb.kernel import registry
from studio_nb.operators.context_join import ContextJoinOp
from studio_nb.operators.evidence import EvidenceOp
from studio_nb.operators.grounding import GroundingGuardOp
from studio_nb.operators.intent_router import IntentRouterOp
from studio_nb.operators.knowledge_rag import KnowledgeRAGOp
from studio_nb.operators.llm_inference import LLMInferenceOp
from studio_nb.operators.memory_loader import MemoryLoaderOp
from studio_nb.operators.memory_saver import MemorySaverOp
from studio_nb.operators.prompt_builder import PromptBuilderOp
from studio_nb.operators.stream_output import StreamOutputOp
from studio_nb.operators.token_budget import TokenBudgetGuardOp
from studio_nb.operators.tool_executor import ToolExecutorOp
from studio_nb.operators.user_input import UserInputOp

# every operator class ends in "Op"; pipeline YAML and snapshots written before three of
# them were renamed still name the old classes
for _old, _new in (("UserInputSource", UserInputOp), ("ContextJoin", ContextJoinOp),
                   ("StreamOutputSink", StreamOutputOp)):
    registry.register(_new, _old)

__all__ = [
    "ContextJoinOp",
    "EvidenceOp",
    "GroundingGuardOp",
    "IntentRouterOp",
    "KnowledgeRAGOp",
    "LLMInferenceOp",
    "MemoryLoaderOp",
    "MemorySaverOp",
    "PromptBuilderOp",
    "StreamOutputOp",
    "TokenBudgetGuardOp",
    "ToolExecutorOp",
    "UserInputOp",
]
