"""Fixtures for the knowledge tests (the real embedder comes from tests/conftest.py)."""
