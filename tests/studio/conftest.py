"""The Studio tests use the run's one real pipeline, ``studio`` (tests/conftest.py): real
llama.cpp model, real embeddings, a subset of the SAGE docs ingested. Loading models and
indexing costs tens of seconds on 2 cores, so it is session-scoped; tests use their own
session ids so they do not see each other's memory."""
