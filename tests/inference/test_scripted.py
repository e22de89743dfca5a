"""The scripted client: the same factory and streaming interface as a real backend."""

from __future__ import annotations

import anyio
import pytest

from studio_nb.errors import ConfigError
from studio_nb.services.inference import create_inference_client
from studio_nb.services.inference.base import InvalidRequestError
from studio_nb.services.inference.scripted import ScriptedClient

MSGS = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "say hi"}]


def test_replies_come_in_order_and_the_last_one_repeats():
    client = create_inference_client({"backend": "scripted", "replies": ["one two", "three"]})
    assert isinstance(client, ScriptedClient)
    assert [client.chat(MSGS).text for _ in range(3)] == ["one two", "three", "three"]
    assert len(client.requests) == 3 and client.requests[0][1]["content"] == "say hi"


def test_a_reply_streams_word_by_word_and_stops_at_max_tokens():
    client = ScriptedClient(["alpha beta gamma delta"])
    deltas = list(client.stream_chat(MSGS, max_tokens=2))
    assert [d.text for d in deltas] == ["alpha ", "beta "]
    assert deltas[-1].finish_reason == "length" and deltas[-1].usage.completion_tokens == 2
    whole = list(client.stream_chat(MSGS))
    assert "".join(d.text for d in whole) == "alpha beta gamma delta" and whole[-1].finish_reason == "stop"


def test_echo_modes_repeat_the_request():
    assert ScriptedClient(echo="last_user").chat(MSGS).text == "say hi"
    assert ScriptedClient(echo="prompt").chat(MSGS).text == "Be brief.\nsay hi"


def test_async_stream_matches_the_sync_one():
    client = ScriptedClient(["x y z"])

    async def collect():
        return [d.text async for d in client.astream_chat(MSGS)]

    assert "".join(anyio.run(collect)) == "x y z"


@pytest.mark.parametrize("kwargs", [{"replies": "not a list"}, {"replies": [], "echo": None}, {"echo": "all"}])
def test_bad_scripts_are_config_errors(kwargs):
    with pytest.raises(ConfigError):
        ScriptedClient(**kwargs)


def test_requests_are_validated_like_any_backend():
    with pytest.raises(InvalidRequestError):
        ScriptedClient().chat([{"role": "robot", "content": "x"}])


def test_every_client_has_one_streaming_loop_and_inherits_the_blocking_forms():
    from studio_nb.services.inference import (InferenceClient, LlamaCppClient, ManagedModelClient,
                                              OpenAICompatibleClient)

    for cls in (LlamaCppClient, ManagedModelClient, OpenAICompatibleClient, ScriptedClient):
        assert "astream_chat" in vars(cls) and not {"stream_chat", "chat"} & set(vars(cls)), cls.__name__
    assert "astream_chat" in InferenceClient.__abstractmethods__
    assert "stream_chat" not in InferenceClient.__abstractmethods__


class _Tracked(ScriptedClient):
    """Records when its stream's clean-up ran."""

    closed = False

    async def astream_chat(self, messages, **options):
        try:
            async for delta in super().astream_chat(messages, **options):
                yield delta
        finally:
            self.closed = True


def test_leaving_the_blocking_stream_early_returns_after_the_stream_stopped():
    client = _Tracked(["one two three four"])
    stream = client.stream_chat(MSGS)
    assert next(stream).text == "one "
    stream.close()
    assert client.closed  # the async stream was closed before close() returned, not later
