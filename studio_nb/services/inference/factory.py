"""``create_inference_client``: a backend chosen by configuration, not by code.

The YAML graph and the CLI pass plain dicts; this is the one place that maps them to a
client class, so an unknown backend or a misspelt option fails here with the list of
what would have been accepted.

The local backend runs in a model process of its own by default (``"isolation":
"process"``, ``ManagedModelClient``): a native crash in llama.cpp then ends one answer,
not the Jupyter server or the notebook kernel, and one user's front ends on one data dir
share one loaded model. ``"isolation": "inline"`` loads the model in this process
(``LlamaCppClient``), as before.
"""

from __future__ import annotations

import inspect

from studio_nb.errors import ConfigError
from studio_nb.services.inference.base import InferenceClient
from studio_nb.services.inference.llama_local import LlamaCppClient
from studio_nb.services.inference.managed import ManagedModelClient
from studio_nb.services.inference.openai_compat import OpenAICompatibleClient
from studio_nb.services.inference.scripted import ScriptedClient

BACKENDS: dict[str, type[InferenceClient]] = {
    "llama_cpp": ManagedModelClient,
    "openai": OpenAICompatibleClient,
    "scripted": ScriptedClient,  # answers from a script: tests of logic that is not about the model
}
#: the local backend's ``isolation`` setting -> client class
ISOLATION: dict[str, type[InferenceClient]] = {"process": ManagedModelClient, "inline": LlamaCppClient}


def _accepted(cls: type) -> list[str]:
    return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]


def create_inference_client(config: dict | None = None, *, data_dir: str | None = None) -> InferenceClient:
    """``{"backend": "llama_cpp", "model_path": ..., "n_ctx": ..., "isolation": "process"}`` or
    ``{"backend": "openai", "base_url": ..., "model": ..., "api_key": ...}``.

    ``None`` or ``{}`` gives the local default: the bundled model through llama.cpp, in the
    user's model process for ``data_dir`` (the pipeline passes its own). Cheap: nothing is
    loaded, started or contacted until ``warm_up``.
    """
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ConfigError(f"inference config must be a dict, got {type(config).__name__}")
    options = dict(config)
    backend = options.pop("backend", "llama_cpp")
    cls = BACKENDS.get(backend)
    if cls is None:
        raise ConfigError(f"unknown inference backend {backend!r}; fix: use one of {sorted(BACKENDS)}")
    if backend == "llama_cpp":
        isolation = options.pop("isolation", "process")
        cls = ISOLATION.get(isolation)
        if cls is None:
            raise ConfigError(f"llm isolation must be one of {sorted(ISOLATION)}, got {isolation!r}")
        if cls is ManagedModelClient and data_dir is not None:
            options.setdefault("data_dir", data_dir)
    accepted = _accepted(cls)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        hint = ""
        if cls is LlamaCppClient and set(unknown) <= set(_accepted(ManagedModelClient)):
            hint = " (those are settings of isolation 'process')"
        raise ConfigError(f"unknown option(s) {unknown} for backend {backend!r}{hint}; accepted: {accepted}")
    try:
        return cls(**options)
    except TypeError as exc:  # a required option is missing (base_url)
        raise ConfigError(f"backend {backend!r}: {exc}; accepted options: {accepted}") from exc
