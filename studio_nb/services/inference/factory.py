"""``create_inference_client``: a backend chosen by configuration, not by code.

The YAML graph and the CLI pass plain dicts; this is the one place that maps them to a
client class, so an unknown backend or a misspelt option fails here with the list of
what would have been accepted.
"""

from __future__ import annotations

import inspect

from studio_nb.errors import ConfigError
from studio_nb.services.inference.base import InferenceClient
from studio_nb.services.inference.llama_local import LlamaCppClient
from studio_nb.services.inference.openai_compat import OpenAICompatibleClient

BACKENDS: dict[str, type[InferenceClient]] = {
    "llama_cpp": LlamaCppClient,
    "openai": OpenAICompatibleClient,
}


def create_inference_client(config: dict | None = None) -> InferenceClient:
    """``{"backend": "llama_cpp", "model_path": ..., "n_ctx": ...}`` or
    ``{"backend": "openai", "base_url": ..., "model": ..., "api_key": ...}``.

    ``None`` or ``{}`` gives the local default: the bundled model through llama.cpp.
    Cheap: nothing is loaded or contacted until ``warm_up``.
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
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(f"unknown option(s) {unknown} for backend {backend!r}; accepted: {accepted}")
    try:
        return cls(**options)
    except TypeError as exc:  # a required option is missing (base_url)
        raise ConfigError(f"backend {backend!r}: {exc}; accepted options: {accepted}") from exc
