"""The resources the Studio pipeline's operators share, owned by the pipeline (DESIGN §2).

One embedding model, one knowledge index, one memory database, one chat model, one
intent classifier and one tool registry per pipeline: built from the configuration,
handed to every operator through ``Operator.bind`` (no process-wide lookup), and closed
by ``pipe.close()``. Every member is created on first access and loads its heavy state
in its own ``warm_up``, so building a ``StudioResources`` is instant.

    res = StudioResources(load_config(data_dir="/tmp/x"))
    res.knowledge.search("ParallelGroup")      # the same objects the operators use
    op.bind(SimpleNamespace(knowledge=fake))    # a test hands an operator a fake instead

On Ray, every worker process builds its own from the same configuration
(``resources_factory(config)`` is picklable).
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Any, Callable

#: member name -> what it is, in the order they are closed last-to-first
MEMBERS = ("embedder", "knowledge", "memory", "llm", "intent", "tools", "evidence", "grounding")
#: studio-nb's own documentation, ingested on first warm-up; always shared, read-only
BUNDLED_DOCS_DOMAIN = "studio_nb_docs"


class StudioResources:
    """Lazily built shared services; see the module docstring."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self._made: dict[str, Any] = {}
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        made = ", ".join(self._made) or "nothing yet"
        return f"StudioResources(data_dir={self.config['data_dir']!r}; built: {made})"

    def _get(self, name: str, make: Callable[[], Any]) -> Any:
        with self._lock:
            if name not in self._made:
                if not self._made:  # before anything writes there: the data dir is owner-only
                    from studio_nb.services.private_files import secure_data_dir

                    secure_data_dir(self.config["data_dir"])
                self._made[name] = make()
            return self._made[name]

    def built(self, name: str) -> bool:
        """Whether ``name`` was created (for health reports: nothing is created by asking)."""
        return name in self._made

    # ------------------------------------------------------------------ members
    @property
    def embedder(self) -> Any:
        from studio_nb.services.embeddings import Embedder

        return self._get("embedder", lambda: Embedder(
            self.config["embedding_model"], runtime=self.config["embedding_runtime"], data_dir=self.config["data_dir"]))

    @property
    def knowledge(self) -> Any:
        from studio_nb.services.knowledge import KnowledgeManager

        def make() -> Any:
            km = KnowledgeManager(self.config["data_dir"], embedder=self.embedder)
            shared_domains = self.config.get("shared_domains")
            if shared_domains is not None:  # the admin's list; the bundled docs are always shared
                km.shared_domains = frozenset([*shared_domains, BUNDLED_DOCS_DOMAIN])
            return km

        return self._get("knowledge", make)

    @property
    def memory(self) -> Any:
        from studio_nb.services.memory import MemoryStore

        def make() -> Any:
            path = Path(self.config["data_dir"]).expanduser() / "memory.sqlite3"
            return MemoryStore(
                path, window=self.config["memory_window"], recall_k=self.config["memory_recall_k"], embedder=self.embedder
            )

        return self._get("memory", make)

    @property
    def llm(self) -> Any:
        from studio_nb.services.inference import create_inference_client

        # the data dir picks the user's model process (one per data dir) when the model runs in one
        return self._get(
            "llm", lambda: create_inference_client(dict(self.config["llm"] or {}), data_dir=self.config["data_dir"])
        )

    @property
    def intent(self) -> Any:
        from studio_nb.services.intent import IntentClassifier

        def make() -> Any:
            intent_llm = self.config.get("intent_llm")
            client = None
            if intent_llm is not None and self.config["intent_mode"] in ("llm", "hybrid"):
                from studio_nb.services.inference import create_inference_client

                client = (
                    self.llm
                    if intent_llm == self.config["llm"]
                    else create_inference_client(dict(intent_llm), data_dir=self.config["data_dir"])
                )
            cache = Path(self.config["data_dir"]).expanduser() / "cache"
            return IntentClassifier(mode=self.config["intent_mode"], embedder=self.embedder, llm=client, cache_dir=str(cache))

        return self._get("intent", make)

    @property
    def tools(self) -> Any:
        from studio_nb.services.tools import default_registry

        return self._get(
            "tools", lambda: default_registry(Path(self.config["workspace"]).expanduser(), knowledge=self.knowledge)
        )

    @property
    def evidence(self) -> Any:
        from studio_nb.services.evidence import EvidenceSelector

        # lexical only: with the embedder the tune-split coverage fell (0.74 -> 0.69) and each
        # question cost ~40 sentence embeddings (bench notes in services/evidence/selector.py)
        return self._get("evidence", EvidenceSelector)

    @property
    def grounding(self) -> Any:
        from studio_nb.services.evidence.grounding import GroundingChecker

        return self._get("grounding", GroundingChecker)

    # ------------------------------------------------------------------ lifecycle
    def warm_up(self, on_step: Callable[[str, int, int], Any] | None = None, progress: bool = False) -> int:
        """Load what a first answer needs, on three threads; returns the number of steps.

        The chat model (its own process, or native code that releases the GIL) and the one
        tokenizer's dictionary (jieba, ~1 s: the largest Python step since the embedding
        model runs on onnxruntime) load beside the chain embedder -> intent prototypes ->
        knowledge indexes (opened, not rebuilt) -> tools and memory. Remote models (the Ray
        engine's pool) are not loaded here by the operators' owner.
        """
        from concurrent.futures import ThreadPoolExecutor

        from studio_nb.services import tokenizer

        chain = [
            ("embedding model", lambda: self.embedder.warm_up()),
            ("intent router", lambda: self.intent.warm_up()),
            ("knowledge indexes", lambda: self.knowledge.warm_up()),
            ("tools and memory", lambda: (self.tools, self.memory)),
        ]
        total = len(chain) + 2
        done = [0]
        lock = threading.Lock()
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, desc="loading models and indexes", unit="step")

        def step(name: str, fn: Callable[[], Any]) -> None:
            fn()
            with lock:
                done[0] += 1
                n = done[0]
            if bar is not None:
                bar.set_postfix_str(name)
                bar.update(1)
            if on_step is not None:
                on_step(name, n, total)

        def run_chain() -> None:
            for name, fn in chain:
                step(name, fn)

        with ThreadPoolExecutor(max_workers=3, thread_name_prefix="studio-warm-up") as pool:
            futures = [pool.submit(step, "chat model", lambda: self.llm.warm_up()),
                       pool.submit(step, "tokenizer", tokenizer.warm_up), pool.submit(run_chain)]
            for f in futures:
                f.result()  # re-raises a failed step (a missing model names its fix)
        if bar is not None:
            bar.close()
        return total

    def close(self) -> None:
        """Close what was built (models freed, files closed), newest first; built again on next use."""
        with self._lock:
            made, self._made = self._made, {}
        for name in reversed(list(made)):
            close = getattr(made[name], "close", None)
            if callable(close):
                try:
                    close()
                except Exception:  # one failing close must not keep the others open
                    import logging

                    logging.getLogger(__name__).exception("closing %s failed", name)


def resources_factory(config: dict[str, Any]) -> Callable[[], StudioResources]:
    """A picklable zero-argument factory (``Pipeline.use_resources`` and Ray workers call it)."""
    return functools.partial(StudioResources, config)
