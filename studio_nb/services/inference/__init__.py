"""Chat inference behind one facade: llama.cpp in a model process of its own (the default)
or in-process, or an OpenAI-compatible server.

See docs/contracts.md "Inference". Importing this package is cheap: llama_cpp and httpx
are imported only when a client warms up or streams.
"""

from studio_nb.services.inference.base import (
    BackendHTTPError,
    BackendTimeoutError,
    BackendUnavailableError,
    Completion,
    InferenceClient,
    InferenceError,
    InvalidRequestError,
    TokenDelta,
    Usage,
)
from studio_nb.services.inference.factory import create_inference_client
from studio_nb.services.inference.llama_local import GenerationStats, LlamaCppClient
from studio_nb.services.inference.managed import ManagedModelClient
from studio_nb.services.inference.model_process import ModelCrashedError, model_processes
from studio_nb.services.inference.openai_compat import OpenAICompatibleClient

__all__ = [
    "BackendHTTPError",
    "BackendTimeoutError",
    "BackendUnavailableError",
    "Completion",
    "GenerationStats",
    "InferenceClient",
    "InferenceError",
    "InvalidRequestError",
    "LlamaCppClient",
    "ManagedModelClient",
    "ModelCrashedError",
    "OpenAICompatibleClient",
    "TokenDelta",
    "Usage",
    "create_inference_client",
    "model_processes",
]
