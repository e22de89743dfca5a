"""LlamaCppClient against the real bundled model (SmolLM2-135M-Instruct Q4_1)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time

import pytest

from studio_nb.errors import BudgetExceededError, ModelNotFoundError
from studio_nb.services.inference import InvalidRequestError, LlamaCppClient, TokenDelta, Usage

pytestmark = pytest.mark.slow

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
FRANCE = [SYSTEM, {"role": "user", "content": "What is the capital of France?"}]
LONG = [SYSTEM, {"role": "user", "content": "Count from 1 to 300, separated by commas."}]
LABELS = ("KNOWLEDGE_QUERY", "SAGE_CODING", "SYSTEM_OPERATION", "GENERAL_CHAT")
LABEL_GRAMMAR = "root ::= " + " | ".join(f'"{label}"' for label in LABELS)


def collect(client, messages, **options) -> list[TokenDelta]:
    async def run():
        return [d async for d in client.astream_chat(messages, **options)]

    return asyncio.run(run())


def llama_workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("studio-llama") and t.is_alive()]


def wait_idle(client, timeout: float = 10.0) -> bool:
    """True once the client's one worker has no generation running (after a stop)."""
    deadline = time.monotonic() + timeout
    while client.busy and time.monotonic() < deadline:
        time.sleep(0.01)
    return not client.busy


# -- lifecycle and errors --------------------------------------------------------------


def test_import_does_not_load_llama_cpp():
    code = "import sys, studio_nb.services.inference as m; m.LlamaCppClient(); print('llama_cpp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_missing_model_is_reported_with_path_and_fix(tmp_path):
    missing = tmp_path / "nope.gguf"
    client = LlamaCppClient(model_path=missing)  # cheap: nothing checked yet
    with pytest.raises(ModelNotFoundError) as info:
        client.warm_up()
    assert str(missing) in str(info.value) and "fix:" in str(info.value)
    assert info.value.code == "model_not_found"


def test_corrupt_model_is_reported_as_model_not_found(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(ModelNotFoundError) as info:
        LlamaCppClient(model_path=bad).warm_up()
    assert str(bad) in str(info.value) and "fix:" in str(info.value)


def test_bad_requests_are_rejected_before_generation(llama_client):
    for messages in ([], [{"role": "user"}], [{"role": "robot", "content": "hi"}], "hello"):
        with pytest.raises(InvalidRequestError) as info:
            llama_client.chat(messages, max_tokens=4)
        assert info.value.code == "bad_request"
    with pytest.raises(InvalidRequestError):
        llama_client.chat(FRANCE, max_tokens=0)
    assert not llama_client.busy


def test_prompt_longer_than_context_is_budget_error():
    client = LlamaCppClient(n_ctx=64)
    try:
        long_question = [{"role": "user", "content": "word " * 200}]
        with pytest.raises(BudgetExceededError) as info:
            client.chat(long_question, max_tokens=8)
        assert "n_ctx" in str(info.value) and info.value.code == "too_long"
        assert client.chat([{"role": "user", "content": "Hi"}], max_tokens=4).usage.completion_tokens > 0
    finally:
        client.close()


# -- tokens ------------------------------------------------------------------------------


def test_count_tokens_uses_the_model_tokenizer(llama_client, shared_data):
    assert llama_client.count_tokens("") == 0
    assert llama_client.count_tokens("Hello world") == 2  # no BOS added
    chinese = (shared_data / "sage_docs" / "about.md").read_text(encoding="utf-8")[:400]
    n = llama_client.count_tokens(chinese)
    # an English-centric byte-level BPE: more tokens than words, at most one per byte
    assert len(chinese.split()) < n <= len(chinese.encode("utf-8"))


def test_chat_token_count_matches_the_prompt_the_model_sees(llama_client):
    n = llama_client.count_chat_tokens(FRANCE)
    content = sum(llama_client.count_tokens(m["content"]) for m in FRANCE)
    assert n > content  # the template adds role markers
    deltas = collect(llama_client, FRANCE, max_tokens=8)
    assert deltas[-1].usage.prompt_tokens == n


# -- streaming ----------------------------------------------------------------------------


def test_astream_chat_streams_text_then_a_final_delta_with_usage(llama_client):
    deltas = collect(llama_client, LONG, max_tokens=12)
    *texts, last = deltas
    assert len(texts) >= 3 and all(d.text and d.finish_reason is None and d.usage is None for d in texts)
    assert last.text == "" and last.finish_reason == "length"
    assert last.usage == Usage(llama_client.count_chat_tokens(LONG), 12)


def test_sync_chat_and_stream_agree(llama_client):
    completion = llama_client.chat(FRANCE, max_tokens=24)
    streamed = "".join(d.text for d in llama_client.stream_chat(FRANCE, max_tokens=24))
    assert completion.text == streamed and "Paris" in completion.text
    assert completion.finish_reason == "stop" and completion.usage.completion_tokens > 0


def test_greedy_output_is_deterministic_and_independent_of_the_cache(llama_client):
    first = llama_client.chat(FRANCE, max_tokens=24).text
    second = llama_client.chat(FRANCE, max_tokens=24).text  # served from the KV cache
    assert llama_client.last_generation.prompt_tokens_evaluated == 1
    fresh = LlamaCppClient()
    try:
        third = fresh.chat(FRANCE, max_tokens=24).text  # cold cache, new process state
    finally:
        fresh.close()
    assert first == second == third


def test_kv_cache_reuses_a_shared_system_prompt(llama_client, shared_data):
    docs = (shared_data / "sage_docs" / "about.md").read_text(encoding="utf-8")[:1500]
    system = {"role": "system", "content": "Answer from these notes.\n\n" + docs}
    llama_client.chat([{"role": "user", "content": "unrelated warm-up"}], max_tokens=2)
    llama_client.chat([system, {"role": "user", "content": "What is SAGE?"}], max_tokens=4)
    cold = llama_client.last_generation
    llama_client.chat([system, {"role": "user", "content": "How do I install it?"}], max_tokens=4)
    warm = llama_client.last_generation
    system_tokens = llama_client.count_tokens(system["content"])
    assert system_tokens > 300
    assert cold.prompt_tokens_evaluated >= system_tokens  # nothing to reuse the first time
    assert warm.prompt_tokens_evaluated < warm.prompt_tokens - system_tokens  # the system prompt was reused


def test_stop_sequences_end_the_answer(llama_client):
    completion = llama_client.chat(FRANCE, max_tokens=24, stop=[" is"])
    assert completion.text == "The capital of France"
    assert completion.finish_reason == "stop"


def test_grammar_constrains_the_answer_to_one_label(llama_client):
    for question in ("How do I write a SAGE operator in Python?", "Hello, how are you today?", "重启服务"):
        messages = [
            {"role": "system", "content": "Classify the user's message. Answer with one label: " + ", ".join(LABELS)},
            {"role": "user", "content": question},
        ]
        completion = llama_client.chat(messages, max_tokens=16, grammar=LABEL_GRAMMAR)
        assert completion.text in LABELS, completion


def test_invalid_grammar_is_a_clear_error_and_the_model_stays_usable(llama_client):
    with pytest.raises(InvalidRequestError) as info:
        llama_client.chat(FRANCE, max_tokens=4, grammar="root ::= (unclosed")
    assert "GBNF" in str(info.value)
    assert llama_client.chat(FRANCE, max_tokens=4).usage.completion_tokens == 4


# -- cancellation and concurrency ---------------------------------------------------------


@pytest.mark.parametrize("how", ["aclose", "cancel"])
def test_closing_or_cancelling_stops_generation_within_one_token(llama_client, how):
    max_tokens = 256
    collect(llama_client, FRANCE, max_tokens=2)  # the client's worker exists from here on
    workers_before = len(llama_workers())

    async def consume(received: list, enough: asyncio.Event):
        async for delta in llama_client.astream_chat(LONG, max_tokens=max_tokens):
            received.append(delta)
            if len(received) == 3:
                enough.set()
                await asyncio.sleep(3600)  # hold the stream open until cancelled

    async def run():
        if how == "aclose":
            stream = llama_client.astream_chat(LONG, max_tokens=max_tokens)
            got = [await anext(stream) for _ in range(3)]
            await stream.aclose()
            return got
        received, enough = [], asyncio.Event()
        task = asyncio.create_task(consume(received, enough))
        await enough.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return received

    got = asyncio.run(run())
    assert len(got) == 3 and all(d.text for d in got)
    assert wait_idle(llama_client), "the generation kept running"
    assert len(llama_workers()) == workers_before  # one long-lived worker, not a thread per stream
    stats = llama_client.last_generation
    assert stats.stopped_early and stats.tokens_after_stop <= 1
    assert 3 <= stats.completion_tokens < max_tokens
    assert not llama_client.busy  # the lock was released
    again = collect(llama_client, FRANCE, max_tokens=8)
    assert again[-1].finish_reason in ("stop", "length") and again[-1].usage.completion_tokens > 0


def test_closing_the_sync_stream_releases_the_model(llama_client):
    stream = llama_client.stream_chat(LONG, max_tokens=256)
    first = [next(stream) for _ in range(2)]
    assert llama_client.busy
    stream.close()
    assert not llama_client.busy
    assert llama_client.last_generation.stopped_early and len(first) == 2


def test_concurrent_requests_take_turns_on_one_model(llama_client):
    questions = [FRANCE, [SYSTEM, {"role": "user", "content": "Name a colour."}]]
    alone = [llama_client.chat(q, max_tokens=16).text for q in questions]

    async def timed(messages):
        spans, texts = [], []
        async for d in llama_client.astream_chat(messages, max_tokens=16):
            spans.append(time.perf_counter())
            texts.append(d.text)
        return spans[0], spans[-1], "".join(texts)

    async def both():
        return await asyncio.gather(*(timed(q) for q in questions))

    (a_start, a_end, a_text), (b_start, b_end, b_text) = asyncio.run(both())
    assert [a_text, b_text] == alone  # no interleaving corrupted either answer
    assert a_end < b_start or b_end < a_start  # one generation at a time
    assert not llama_client.busy


def test_a_waiting_request_can_be_cancelled_before_its_turn(llama_client):
    async def run():
        first = llama_client.astream_chat(LONG, max_tokens=256)
        await anext(first)  # holds the model
        waiting = asyncio.create_task(collect_async(llama_client.astream_chat(FRANCE, max_tokens=8)))
        for _ in range(5):  # let the task start and queue its request behind the first one
            await asyncio.sleep(0)
        assert not waiting.done()
        waiting.cancel()
        await first.aclose()
        with pytest.raises(asyncio.CancelledError):
            await waiting

    async def collect_async(stream):
        return [d async for d in stream]

    asyncio.run(run())
    assert wait_idle(llama_client)
    assert not llama_client.busy
