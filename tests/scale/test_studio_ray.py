"""End to end: the real Studio pipeline (llama.cpp model, embeddings, SQLite memory) on
RayEngine, with the LLM operator on a Ray worker that loads its own model."""

from __future__ import annotations

import pytest

from studio_nb.kernel import StepEvent
from studio_nb.kernel.ray_engine import RayEngine
from studio_nb.messages import Response, TextDelta
from studio_nb.studio import create_studio_pipeline

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_studio_pipeline_streams_a_real_answer_from_a_ray_llm_worker(ray_local, tmp_path):
    pipe = create_studio_pipeline(data_dir=str(tmp_path), max_tokens=16, bundled_docs=False, intent_mode="keyword")
    engine = RayEngine(
        namespace="studio_e2e",
        placement={"llm_inference": "pool:llm"},
        pools={"llm": {"num_cpus": 0.5}},
    )
    pipe.pipeline.engine = engine
    try:
        events = list(pipe.stream("hello, who are you?", session_id="e2e", events=True))
        deltas = [e for e in events if isinstance(e, TextDelta)]
        response = events[-1]
        assert isinstance(response, Response)
        assert response.text.strip() and len(deltas) >= 2
        assert "".join(d.content for d in deltas) == response.text
        assert 0 < response.usage.completion_tokens <= 16
        steps = [(e.operator, e.status) for e in events if isinstance(e, StepEvent)]
        assert ("llm_inference", "completed") in steps and ("memory_saver", "completed") in steps
        # the model ran on the Ray worker, not in this process
        workers = engine.actors()
        assert workers["studio_nb/pool/llm/0"]["operators"] == ["llm_inference"]
        assert engine.stats["llm_inference"].extra["placement"] == "pool:llm"
        # memory holds the acknowledged turn
        history = pipe.memory.history("e2e")
        assert [(t.question, t.answer) for t in history] == [("hello, who are you?", response.text)]
    finally:
        engine.shutdown()
        pipe.close()
