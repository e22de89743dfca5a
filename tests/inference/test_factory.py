"""create_inference_client maps plain config dicts to clients, and rejects bad ones clearly."""

from __future__ import annotations

import pytest

from studio_nb.errors import ConfigError
from studio_nb.services.inference import LlamaCppClient, OpenAICompatibleClient, create_inference_client


def test_llama_cpp_backend_is_built_cheaply_from_config(tmp_path):
    path = tmp_path / "m.gguf"  # need not exist until warm_up
    client = create_inference_client(
        {"backend": "llama_cpp", "model_path": str(path), "n_ctx": 1024, "n_threads": 3, "seed": 7}
    )
    assert isinstance(client, LlamaCppClient)
    assert (client.model_path, client.n_ctx, client.n_threads, client.seed) == (str(path), 1024, 3, 7)
    assert client.model_name == "m"


def test_default_is_the_local_model():
    client = create_inference_client(None)
    assert isinstance(client, LlamaCppClient) and client.model_path is None
    assert client.model_name == "SmolLM2-135M-Instruct.Q4_1"


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
        ("llama_cpp", ["must be a dict"]),
    ],
)
def test_bad_config_is_a_config_error_that_says_what_fits(config, words):
    with pytest.raises(ConfigError) as info:
        create_inference_client(config)
    assert info.value.code == "bad_config"
    for word in words:
        assert word in str(info.value)
