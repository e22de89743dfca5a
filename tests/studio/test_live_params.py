"""An operator's settings have one source, its attributes: what a notebook cell changes is
what ``to_yaml()``, the page's graph and a replay see. The scripted model keeps this off
the real one (nothing here is about generation)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml


@pytest.fixture
def pipe(scripted_studio: Any) -> Any:
    return scripted_studio(bundled_docs=False)


def _params(text: str, node: str) -> dict[str, Any]:
    return next(n for n in yaml.safe_load(text)["nodes"] if n["name"] == node).get("params", {})


def test_a_cell_that_sets_max_tokens_is_what_to_yaml_writes(pipe: Any) -> None:
    assert _params(pipe.to_yaml(), "prompt_builder")["max_tokens"] != 64
    pipe["prompt_builder"].max_tokens = 64
    assert _params(pipe.to_yaml(), "prompt_builder")["max_tokens"] == 64
    assert pipe["prompt_builder"].config["max_tokens"] == 64


def test_a_replay_override_starts_from_the_live_settings(pipe: Any) -> None:
    pipe["prompt_builder"].max_doc_chars = 123
    op = pipe.pipeline.override("prompt_builder", params={"max_tokens": 16})
    assert (op.max_doc_chars, op.max_tokens) == (123, 16)
    assert pipe["prompt_builder"].max_tokens != 16  # the override is for one request only
