"""The knowledge service: ingest files into named domains, search them densely
(sentence-transformers + hnswlib), lexically (CJK-aware BM25) or both fused.

Importing this package is cheap: torch, sentence-transformers, hnswlib and jieba load in
``KnowledgeManager.warm_up`` (or on first use).
"""

from studio_nb.services.knowledge.manager import MODES, STANDARD_DOMAINS, KnowledgeManager
from studio_nb.services.knowledge.split_text import SplitConfig
from studio_nb.services.knowledge.types import Chunk, DomainInfo, IngestReport, SearchHit

__all__ = [
    "MODES",
    "STANDARD_DOMAINS",
    "Chunk",
    "DomainInfo",
    "IngestReport",
    "KnowledgeManager",
    "SearchHit",
    "SplitConfig",
]
