"""A replay frame cannot lift the server's limits (issue #21, finding 2), over a real
two-user Jupyter server, the real pipeline and model, a real WebSocket client.

Before the fix ``{"prompt_builder": {"max_tokens": 1800, "synthesis_tokens": 1800},
"llm_inference": {"stop_on_loop": false}}`` generated 1,800 tokens and held the shared
model for 40 s. Now each parameter goes through the allow-list of studio_nb/debug/limits.py:
a cost may be lowered, never raised above the server's configured value, and parameters
outside the list are refused by name. That the model is shared fairly while a user runs the
longest answer their limits allow is tested on the model process itself
(tests/inference/test_model_fairness.py).
"""

from __future__ import annotations

import pytest

from tests.jupyter.conftest import MAX_TOKENS
from tests.jupyter.identity import TwoUsers, token
from tests.jupyter.test_isolation import ask

pytestmark = pytest.mark.slow
BOB = token("bob")
QUESTION = "What is a ParallelGroup in studio-nb?"


@pytest.fixture
def server_extra():
    return {"identity_provider_class": TwoUsers}


async def replay(ws, rid, params, **frame):
    await ws.send({"type": "replay", "session_id": "bob-replay", "request_id": rid, "params": params, **frame})
    return (await ws.until_done(rid))[-1]


async def test_replay_params_pass_the_allow_list_and_its_bounds(studio_ws):
    await ask(studio_ws, BOB, QUESTION, "bob-replay", "r0")
    ws = await studio_ws(headers=dict(BOB))
    lifted = {"prompt_builder": {"max_tokens": 1800, "synthesis_tokens": 1800},
              "llm_inference": {"stop_on_loop": False}}
    refused = {
        "lifted": (lifted, "prompt_builder.max_tokens must be between 1 and"),
        "stop_on_loop": ({"llm_inference": {"stop_on_loop": False}},
                         "llm_inference.stop_on_loop cannot be changed in a replay on this server"),
        "above": ({"prompt_builder": {"max_tokens": MAX_TOKENS + 1}}, f"and {MAX_TOKENS} (the server's configured"),
        "kind": ({"knowledge_rag": {"k": "all"}}, "knowledge_rag.k must be a whole number"),
        "choice": ({"evidence": {"mode": "poetic"}}, "evidence.mode must be one of grounded, extractive, generative"),
        "node": ({"no_such_node": {"x": 1}}, "no operator node 'no_such_node'"),
        "group": ({"context": {"k": 1}}, "no operator node 'context'"),
        "too_many": ({"prompt_builder": {f"p{i}": 1 for i in range(40)}}, "at most 32 parameters"),
    }
    for name, (params, message) in refused.items():
        frame = await replay(ws, f"bad-{name}", params, **{"from": "prompt_builder"})
        assert frame["type"] == "error" and frame["code"] == "bad_config", (name, frame)
        assert message in frame["message"], (name, frame["message"])
    # within the bounds, a replay runs as before (and says what it ran with)
    done = await replay(ws, "ok", {"prompt_builder": {"max_tokens": 8, "synthesis_tokens": 8}})
    assert done["type"] == "done" and done["replay_of"] == "r0", done
    assert done["usage"]["completion_tokens"] <= 8
