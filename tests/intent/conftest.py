"""Shared fixtures: the real embedding model and the real chat model, loaded once."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from studio_nb.services.intent import IntentClassifier  # noqa: E402


@pytest.fixture(scope="session")
def embedder(real_embedder):
    return real_embedder


@pytest.fixture(scope="session")
def chat_llm():
    from studio_nb.services.inference import create_inference_client

    client = create_inference_client({"backend": "llama_cpp", "n_ctx": 1024})
    client.warm_up()
    yield client
    client.close()


@pytest.fixture(scope="session")
def classifiers(embedder):
    """One warmed classifier per non-llm mode, sharing the real embedder."""
    out = {mode: IntentClassifier(mode, embedder=embedder) for mode in ("keyword", "embedding", "hybrid")}
    for clf in out.values():
        clf.warm_up()
    return out
