"""One instance per process of each heavy service, looked up by plain config.

Operators are configured with JSON-able values (so pipelines round-trip through YAML)
but must share one knowledge index, one memory database and one loaded model. They ask
this module for the instance that matches their config; the first ask creates it. On
Ray, every worker process gets its own instances the same way.
"""

from __future__ import annotations

import atexit
import json
import threading
from pathlib import Path
from typing import Any, Callable

_instances: dict[tuple[str, str], Any] = {}
_lock = threading.RLock()  # factories call _get for the services they depend on


def _get(kind: str, key: Any, factory: Callable[[], Any]) -> Any:
    k = (kind, json.dumps(key, sort_keys=True, default=str))
    with _lock:
        if k not in _instances:
            _instances[k] = factory()
        return _instances[k]


def knowledge_manager(data_dir: str | Path, embedding_model: str | None = None) -> Any:
    from studio_nb.services.embeddings import shared_embedder
    from studio_nb.services.knowledge import KnowledgeManager

    return _get(
        "knowledge",
        [str(Path(data_dir).expanduser().resolve()), embedding_model],
        lambda: KnowledgeManager(data_dir, embedder=shared_embedder(embedding_model)),
    )


def memory_store(data_dir: str | Path, window: int = 6, recall_k: int = 3, embedding_model: str | None = None) -> Any:
    from studio_nb.services.embeddings import shared_embedder
    from studio_nb.services.memory import MemoryStore

    path = Path(data_dir).expanduser().resolve() / "memory.sqlite3"
    return _get(
        "memory",
        [str(path), window, recall_k, embedding_model],
        lambda: MemoryStore(path, window=window, recall_k=recall_k, embedder=shared_embedder(embedding_model)),
    )


def inference_client(config: dict[str, Any] | None) -> Any:
    from studio_nb.services.inference import create_inference_client

    return _get("llm", config or {}, lambda: create_inference_client(dict(config or {})))


def intent_classifier(mode: str = "hybrid", embedding_model: str | None = None, llm: dict | None = None) -> Any:
    from studio_nb.services.embeddings import shared_embedder
    from studio_nb.services.intent import IntentClassifier

    def make() -> Any:
        client = inference_client(llm) if (llm is not None and mode in ("llm", "hybrid")) else None
        return IntentClassifier(mode=mode, embedder=shared_embedder(embedding_model), llm=client)

    return _get("intent", [mode, embedding_model, llm], make)


def tool_registry(workspace: str | Path, data_dir: str | Path, embedding_model: str | None = None) -> Any:
    from studio_nb.services.tools import default_registry

    return _get(
        "tools",
        [str(Path(workspace).expanduser().resolve()), str(data_dir), embedding_model],
        lambda: default_registry(Path(workspace).expanduser(), knowledge=knowledge_manager(data_dir, embedding_model)),
    )


@atexit.register
def reset() -> None:
    """Forget every instance (tests; a server reload). Closes what can be closed.

    Also runs at interpreter exit: llama.cpp's finaliser fails noisily if the model is
    still open while modules are being torn down."""
    with _lock:
        items = list(_instances.values())
        _instances.clear()
    for obj in items:
        close = getattr(obj, "close", None)
        if callable(close):
            try:
                close()
            except Exception:
                pass
