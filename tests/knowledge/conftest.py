"""Fixtures for the knowledge tests: the real embedding model, loaded once per session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def real_embedder():
    from studio_nb.services.embeddings import shared_embedder

    emb = shared_embedder()
    emb.warm_up()
    return emb
