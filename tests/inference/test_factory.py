"""create_inference_client maps plain config dicts to clients, and rejects bad ones clearly."""

from __future__ import annotations

import pytest

from studio_nb.errors import ConfigError
from studio_nb.services.inference import (
    LlamaCppClient,
    ManagedModelClient,
    OpenAICompatibleClient,
    create_inference_client,
)


@pytest.mark.parametrize("isolation, cls", [("process", ManagedModelClient), ("inline", LlamaCppClient)])
def test_llama_cpp_backend_is_built_cheaply_from_config(tmp_path, isolation, cls):
    path = tmp_path / "m.gguf"  # need not exist until warm_up
    client = create_inference_client(
        {"backend": "llama_cpp", "isolation": isolation, "model_path": str(path), "n_ctx": 1024, "n_threads": 3,
         "seed": 7}
    )  # fmt: skip
    assert type(client) is cls
    assert (client.model_path, client.n_ctx, client.n_threads, client.seed) == (str(path), 1024, 3, 7)
    assert client.model_name == "m"


def test_default_is_the_local_model_in_a_model_process_of_the_data_dir(tmp_path):
    client = create_inference_client(None, data_dir=str(tmp_path))
    assert isinstance(client, ManagedModelClient) and client.model_path is None
    assert client.model_name == "SmolLM2-135M-Instruct.Q4_1" and client.data_dir == str(tmp_path)
    assert client.process is None  # nothing started before warm_up
    inline = create_inference_client({"isolation": "inline"}, data_dir=str(tmp_path))
    assert type(inline) is LlamaCppClient


def test_openai_backend():
    client = create_inference_client(
        {"backend": "openai", "base_url": "http://127.0.0.1:9/v1/", "model": "m", "api_key": "k"}
    )
    assert isinstance(client, OpenAICompatibleClient)
    assert (client.base_url, client.root_url, client.model, client.api_key) == (
        "http://127.0.0.1:9/v1",
        "http://127.0.0.1:9",
        "m",
        "k",
    )


@pytest.mark.parametrize(
    "config, words",
    [
        ({"backend": "vllm-direct"}, ["unknown inference backend", "llama_cpp", "openai"]),
        ({"backend": "llama_cpp", "modelpath": "x"}, ["modelpath", "model_path"]),
        ({"backend": "openai"}, ["base_url"]),
        ({"backend": "openai", "base_url": "localhost:8000"}, ["http(s) URL"]),
        ({"backend": "llama_cpp", "n_ctx": 0}, ["n_ctx"]),
        ({"backend": "llama_cpp", "isolation": "inline", "n_ctx": 0}, ["n_ctx"]),
        ({"backend": "llama_cpp", "isolation": "thread"}, ["isolation", "inline", "process"]),
        ({"backend": "llama_cpp", "isolation": "inline", "idle_timeout_s": 5}, ["idle_timeout_s", "'process'"]),
        ("llama_cpp", ["must be a dict"]),
    ],
)
def test_bad_config_is_a_config_error_that_says_what_fits(config, words):
    with pytest.raises(ConfigError) as info:
        create_inference_client(config)
    assert info.value.code == "bad_config"
    for word in words:
        assert word in str(info.value)
