"""OpenAICompatibleClient against a real llama-cpp-python server (child process), plus a
tiny stdlib HTTP server for the protocol corners the real one does not exercise
(usage chunks, missing tokenizer endpoint, HTTP 500, malformed stream lines)."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from studio_nb.errors import StudioError
from studio_nb.services.inference import (
    BackendHTTPError,
    BackendUnavailableError,
    InferenceError,
    OpenAICompatibleClient,
    Usage,
)
from studio_nb.services.inference.openai_compat import approximate_token_count
from tests.inference.conftest import LONG, QUESTION

pytestmark = pytest.mark.slow


async def acollect(stream):
    return [d async for d in stream]


# -- the real server ------------------------------------------------------------------


def test_streams_an_answer_from_a_real_server(llama_server):
    client = OpenAICompatibleClient(llama_server + "/v1")  # with or without /v1
    client.warm_up()
    deltas = asyncio.run(acollect(client.astream_chat(QUESTION, max_tokens=24)))
    *texts, last = deltas
    assert texts and all(d.text for d in texts)
    assert last.finish_reason in ("stop", "length") and last.text == ""
    assert last.usage.completion_tokens == len(texts)  # llama.cpp streams one token per delta
    assert last.usage.prompt_tokens == client.count_chat_tokens(QUESTION)
    # The stock server decodes a cached prompt differently from a cold one (see
    # llama_local.py), so its greedy text may differ between the two calls: not compared.
    sync = client.chat(QUESTION, max_tokens=24)
    assert sync.text and 0 < sync.usage.completion_tokens <= 24
    client.close()


def test_counts_tokens_with_the_servers_tokenizer(llama_server, llama_client, shared_data):
    client = OpenAICompatibleClient(llama_server)
    chinese = (shared_data / "sage_docs" / "about.md").read_text(encoding="utf-8")[:300]
    for text in ("Hello world", "The pipeline streams tokens to the notebook.", chinese):
        assert client.count_tokens(text) == llama_client.count_tokens(text)
    exact = llama_client.count_chat_tokens(QUESTION)
    assert abs(client.count_chat_tokens(QUESTION) - exact) <= 3  # documented approximation


def test_closing_the_stream_frees_the_server_for_the_next_request(llama_server):
    client = OpenAICompatibleClient(llama_server, timeout_s=30)

    async def run():
        stream = client.astream_chat(LONG, max_tokens=256)
        first = [await anext(stream) for _ in range(3)]
        await stream.aclose()
        return first, await acollect(client.astream_chat(QUESTION, max_tokens=8))

    first, after = asyncio.run(run())
    assert len(first) == 3 and after[-1].finish_reason in ("stop", "length")


def test_grammar_is_passed_to_the_server(llama_server):
    client = OpenAICompatibleClient(llama_server)
    messages = [{"role": "user", "content": "Is the sky blue? Answer yes or no."}]
    completion = client.chat(messages, max_tokens=8, grammar='root ::= "yes" | "no"')
    assert completion.text in ("yes", "no")


def test_http_errors_name_the_url(llama_server):
    client = OpenAICompatibleClient(llama_server + "/not-here")
    with pytest.raises(BackendHTTPError) as info:
        client.chat(QUESTION, max_tokens=4)
    assert info.value.status == 404 and "/not-here/v1/chat/completions" in str(info.value)
    assert isinstance(info.value, StudioError) and info.value.code == "backend_http_error"


def test_connection_refused_is_backend_unavailable():
    import socket

    with socket.socket() as held:  # bound but never listening: refused, and the port stays ours
        held.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{held.getsockname()[1]}"
        client = OpenAICompatibleClient(url, timeout_s=5)
        with pytest.raises(BackendUnavailableError) as info:
            client.warm_up()
        assert url in str(info.value) and "fix:" in str(info.value) and info.value.code == "backend_unavailable"
        with pytest.raises(BackendUnavailableError):
            asyncio.run(acollect(client.astream_chat(QUESTION, max_tokens=4)))


# -- protocol corners, with a stdlib stand-in ---------------------------------------------


class _Scripted(BaseHTTPRequestHandler):
    """Answers chat requests with a scripted SSE body; no tokenizer endpoint."""

    script: list[str] = []
    status = 200

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        if not self.path.endswith("/chat/completions"):
            self.send_error(404)
            return
        self.send_response(self.status)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()
        for line in self.script:
            self.wfile.write(f"{line}\n\n".encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def scripted():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _chunk(**fields) -> str:
    return "data: " + json.dumps(fields)


def test_server_usage_chunk_is_used_and_comments_are_skipped(scripted):
    _Scripted.status = 200
    _Scripted.script = [
        ": ping",
        _chunk(choices=[{"delta": {"role": "assistant"}, "finish_reason": None}]),
        _chunk(choices=[{"delta": {"content": "Hi"}, "finish_reason": None}]),
        _chunk(choices=[{"delta": {}, "finish_reason": "stop"}]),
        _chunk(choices=[], usage={"prompt_tokens": 11, "completion_tokens": 1}),
        "data: [DONE]",
    ]
    client = OpenAICompatibleClient(f"http://127.0.0.1:{scripted.server_port}")
    completion = client.chat(QUESTION, max_tokens=4)
    assert (completion.text, completion.finish_reason, completion.usage) == ("Hi", "stop", Usage(11, 1))


def test_missing_tokenizer_endpoint_falls_back_to_the_documented_estimate(scripted, llama_client, shared_data):
    client = OpenAICompatibleClient(f"http://127.0.0.1:{scripted.server_port}")
    chinese = (shared_data / "sage_docs" / "about.md").read_text(encoding="utf-8")[:300]
    for text in ("The pipeline streams tokens to the notebook.", chinese):
        assert client.count_tokens(text) == approximate_token_count(text)
        assert approximate_token_count(text) >= llama_client.count_tokens(text)  # errs high: safe for budgets


def test_server_errors_and_broken_streams_are_inference_errors(scripted):
    client = OpenAICompatibleClient(f"http://127.0.0.1:{scripted.server_port}")
    _Scripted.status, _Scripted.script = 500, ['{"error": "boom"}']
    with pytest.raises(BackendHTTPError) as info:
        client.chat(QUESTION, max_tokens=4)
    assert info.value.status == 500 and "boom" in str(info.value)
    _Scripted.status, _Scripted.script = 200, ["data: {not json"]
    with pytest.raises(InferenceError, match="malformed"):
        asyncio.run(acollect(client.astream_chat(QUESTION, max_tokens=4)))
