"""ManagedModelClient and its model process, against the real bundled model.

Each test that kills or stops a process uses a data dir of its own, so it has a process of
its own; the others share one module-wide client.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from studio_nb.errors import BudgetExceededError, ModelNotFoundError
from studio_nb.services.inference import (
    InvalidRequestError,
    ManagedModelClient,
    ModelCrashedError,
    Usage,
    model_processes,
)
from studio_nb.services.inference.model_process import runtime_dir, wait_exit
from tests.inference.conftest import LONG, N_THREADS, QUESTION

pytestmark = pytest.mark.slow

NOBODY = 65534


def client_for(data_dir, **kw) -> ManagedModelClient:
    return ManagedModelClient(n_threads=N_THREADS, n_ctx=2048, data_dir=str(data_dir), **kw)


@pytest.fixture(scope="module")
def managed(tmp_path_factory):
    client = client_for(tmp_path_factory.mktemp("managed-data"))
    client.warm_up()
    yield client
    client.close()


def raw_get(socket_path: str, path: str, token: str | None):
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    with httpx.Client(transport=httpx.HTTPTransport(uds=socket_path), headers=headers) as http:
        return http.get("http://model.local" + path)


def alive(pid: int) -> bool:
    return not wait_exit(pid, 0)[0]


# -- the same model, the same answers -------------------------------------------------


def test_answers_and_token_counts_are_those_of_the_in_process_client(managed, llama_client, shared_data):
    inline = llama_client.chat(QUESTION, max_tokens=24)
    assert managed.chat(QUESTION, max_tokens=24) == inline
    streamed = asyncio.run(_collect(managed.astream_chat(QUESTION, max_tokens=24)))
    assert "".join(d.text for d in streamed) == inline.text
    assert streamed[-1].usage == inline.usage == Usage(llama_client.count_chat_tokens(QUESTION), len(streamed) - 1)
    chinese = (shared_data / "sage_docs" / "about.md").read_text(encoding="utf-8")[:300]
    for text in ("Hello world", chinese):
        assert managed.count_tokens(text) == llama_client.count_tokens(text)
    assert managed.count_chat_tokens(QUESTION) == llama_client.count_chat_tokens(QUESTION)
    gen = managed.last_generation  # the process's stats travel with the last chunk
    assert (gen.prompt_tokens, gen.completion_tokens) == (inline.usage.prompt_tokens, inline.usage.completion_tokens)


async def _collect(stream):
    return [d async for d in stream]


def test_errors_keep_the_code_the_in_process_client_gives(managed):
    with pytest.raises(BudgetExceededError) as long:
        managed.chat([{"role": "user", "content": "word " * 3000}], max_tokens=8)
    assert long.value.code == "too_long" and "n_ctx=2048" in str(long.value)
    with pytest.raises(InvalidRequestError) as grammar:
        managed.chat(QUESTION, max_tokens=4, grammar="root ::= (")
    assert "GBNF" in str(grammar.value)
    assert managed.chat(QUESTION, max_tokens=4).text  # and the process still answers


def _first_three_then_close(client, mode: str) -> list:
    if mode == "sync":
        stream = client.stream_chat(LONG, max_tokens=256)
        first = [next(stream) for _ in range(3)]
        stream.close()
        return first

    async def run():
        stream = client.astream_chat(LONG, max_tokens=256)
        first = [await anext(stream) for _ in range(3)]
        await stream.aclose()
        return first

    return asyncio.run(run())


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_closing_the_stream_stops_generation_in_the_process(managed, mode):
    def last_stopped():
        return raw_get(managed.process.socket_path, "/health", managed.process.token()).json()["last_stopped"]

    before = last_stopped()
    first = _first_three_then_close(managed, mode)
    after = managed.chat(QUESTION, max_tokens=8)  # queued behind the stopped one: it must have let go
    assert len(first) == 3 and "Paris" in after.text
    stopped = last_stopped()
    assert stopped != before and stopped["stopped_early"] and stopped["tokens_after_stop"] <= 1
    assert 3 <= stopped["completion_tokens"] < 256


# -- who may use it --------------------------------------------------------------------


def test_socket_and_files_are_private_to_the_owner(managed):
    folder = runtime_dir()
    st = os.stat(folder)
    assert st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) == 0o700
    sock = os.stat(managed.process.socket_path)
    assert stat.S_ISSOCK(sock.st_mode) and stat.S_IMODE(sock.st_mode) == 0o600
    for path in (managed.process.token_file, managed.process.info_file, managed.process.log_file,
                 managed.process.users_file, managed.process.lock_file):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path


def test_a_missing_or_wrong_token_is_refused(managed):
    sock = managed.process.socket_path
    assert raw_get(sock, "/health", None).status_code == 401
    refused = raw_get(sock, "/health", "not-the-token")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
    ok = raw_get(sock, "/health", managed.process.token())
    assert ok.status_code == 200 and ok.json()["pid"] == managed.pid


NOBODY_CLIENT = r"""
import socket, sys
path, token = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(path)
except OSError as exc:
    print("connect failed:", type(exc).__name__); sys.exit(0)
s.sendall(f"GET /health HTTP/1.1\r\nHost: m\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
print(s.recv(200).decode().splitlines()[0])
"""


def as_nobody(socket_path: str, token: str) -> str:
    python = shutil.which("python3", path="/usr/bin:/bin")  # the venv's may live in a private home
    out = subprocess.run([python, "-c", NOBODY_CLIENT, socket_path, token], user=NOBODY, group=NOBODY,
                         extra_groups=[], capture_output=True, text=True, timeout=60, cwd="/")
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.skipif(os.getuid() != 0, reason="switching to another uid needs root")
def test_another_user_cannot_reach_the_process_even_with_the_token(monkeypatch):
    # its own runtime folder: the test opens it up, which the shared one must never be
    folder = Path(tempfile.mkdtemp(prefix="studio-nb-rt-", dir="/tmp"))
    monkeypatch.setenv("STUDIO_NB_RUNTIME_DIR", str(folder / "run"))
    client = client_for(folder / "data")
    try:
        client.warm_up()
        sock, token = client.process.socket_path, client.process.token()
        assert as_nobody(sock, token) == "connect failed: PermissionError"  # the 0700 folder
        # open the folder and the socket to everyone: the process itself still refuses another uid
        os.chmod(folder, 0o755)
        os.chmod(folder / "run", 0o755)
        os.chmod(sock, 0o666)
        assert as_nobody(sock, token) == "HTTP/1.1 403 Forbidden"
        assert client.chat(QUESTION, max_tokens=4).text  # the owner still gets in
    finally:
        client.close()
        shutil.rmtree(folder, ignore_errors=True)


# -- one process per user and data dir -------------------------------------------------

SHARE_CHILD = r"""
import json, sys
from studio_nb.services.inference import create_inference_client
client = create_inference_client({"n_threads": int(sys.argv[2])}, data_dir=sys.argv[1])
text = client.chat([{"role": "user", "content": "Say hi."}], max_tokens=4).text
print(json.dumps({"pid": client.pid, "text": text}))
client.close()
"""


def test_front_ends_on_one_data_dir_share_one_process(managed, tmp_path):
    second = client_for(managed.data_dir)
    second.warm_up()
    assert second.pid == managed.pid
    # another front end process (a CLI, a notebook kernel) finds the same one
    out = subprocess.run([sys.executable, "-c", SHARE_CHILD, managed.data_dir, str(N_THREADS)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    child = json.loads(out.stdout.strip().splitlines()[-1])
    assert child["pid"] == managed.pid and child["text"]
    second.close()  # others still use it: it keeps serving
    assert alive(managed.pid) and managed.chat(QUESTION, max_tokens=4).text
    assert [p["pid"] for p in model_processes(managed.data_dir)] == [managed.pid]
    other = client_for(tmp_path / "other-data")  # another data dir: another process
    other.warm_up()
    assert other.pid != managed.pid
    other.close()
    assert not alive(other.pid) and not os.path.exists(other.process.socket_path)


def test_close_stops_the_process_when_nobody_else_uses_it(tmp_path):
    a, b = client_for(tmp_path), client_for(tmp_path)
    a.warm_up()
    b.warm_up()
    pid = a.pid
    a.close()
    assert alive(pid) and b.chat(QUESTION, max_tokens=4).text
    b.close()
    assert wait_exit(pid, 60)[0] and model_processes(str(tmp_path)) == []
    a.warm_up()  # closed clients come back on demand
    assert a.pid != pid and a.chat(QUESTION, max_tokens=4).text
    a.close()


def test_an_unused_process_exits_after_its_idle_timeout(tmp_path):
    client = client_for(tmp_path, idle_timeout_s=0.2)
    client.warm_up()
    client.chat(QUESTION, max_tokens=4)
    time.sleep(1.0)  # several idle periods pass while a client is attached: it must stay
    assert alive(client.pid)
    client.process.detach(stop_if_unused=False)  # a front end that went away without closing
    assert wait_exit(client.pid, 120)[0]
    assert not os.path.exists(client.process.socket_path)
    client.close()


# -- crashes ---------------------------------------------------------------------------


def test_sigkill_mid_answer_is_model_crashed_and_the_next_request_restarts(tmp_path):
    client = client_for(tmp_path)
    client.warm_up()
    try:
        first_pid = client.pid
        stream = client.stream_chat(LONG, max_tokens=256)
        assert [next(stream).text for _ in range(2)]
        os.kill(first_pid, signal.SIGKILL)
        with pytest.raises(ModelCrashedError) as crash:
            list(stream)
        assert crash.value.code == "model_crashed"
        assert f"pid {first_pid}" in str(crash.value) and "SIGKILL" in str(crash.value)
        assert "next question restarts it" in str(crash.value)
        assert "Paris" in client.chat(QUESTION, max_tokens=8).text
        second_pid = client.pid
        assert second_pid != first_pid and alive(second_pid)

        async def crash_async():
            stream = client.astream_chat(LONG, max_tokens=256)
            await anext(stream)
            os.kill(second_pid, signal.SIGKILL)
            with pytest.raises(ModelCrashedError) as crash:
                await _collect(stream)
            return str(crash.value), await _collect(client.astream_chat(QUESTION, max_tokens=8))

        message, after = asyncio.run(crash_async())
        assert "SIGKILL" in message and "Paris" in "".join(d.text for d in after)
        assert client.pid not in (first_pid, second_pid)
    finally:
        client.close()


def test_a_process_that_dies_while_loading_is_named_with_its_signal(tmp_path, monkeypatch):
    # stands in for a llama.cpp build this CPU cannot run: the "interpreter" dies of SIGILL
    fake = tmp_path / "python-sigill"
    fake.write_text("#!/bin/sh\nkill -ILL $$\n")
    fake.chmod(0o700)
    monkeypatch.setattr(sys, "executable", str(fake))
    client = client_for(tmp_path)
    with pytest.raises(ModelCrashedError) as info:
        client.warm_up()
    message = str(info.value)
    assert "died while loading" in message and "SIGILL" in message and "studio_nb.selftest" in message
    client.close()


def test_missing_and_unloadable_models_are_clear_errors(tmp_path):
    missing = client_for(tmp_path, model_path=str(tmp_path / "nope.gguf"))
    with pytest.raises(ModelNotFoundError) as info:
        missing.warm_up()
    assert "nope.gguf" in str(info.value) and "fix" in str(info.value)
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF but not really" * 10)
    broken = client_for(tmp_path, model_path=str(bad))
    with pytest.raises(ModelNotFoundError) as info:  # raised in the process, re-raised here
        broken.warm_up()
    assert "bad.gguf" in str(info.value) and "could not be loaded" in str(info.value)
    broken.close()
