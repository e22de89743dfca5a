"""The portable llama.cpp build (issue: SIGILL on AMX machines) and the generation self-test.

The self-test runs the real model in a child process; a crashing build is stood in for
by a child that kills itself with the same signal (that is all the reporting sees).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from studio_nb import llama_build, selftest

REPO = Path(__file__).resolve().parents[2]


def test_the_build_flags_are_portable_and_never_native():
    args = llama_build.cmake_args("x86_64")
    assert "-DGGML_NATIVE=OFF" in args and "-DGGML_AVX2=ON" in args
    assert "-DGGML_AVX512=OFF" in args  # AVX-512 would crash most laptops
    assert not any("native" in a.lower() and "OFF" not in a for a in args)
    assert not any("AMX" in a and "ON" in a for a in args)
    assert llama_build.cmake_args("aarch64") == list(llama_build.OTHER_ARGS)


def test_the_wheelhouse_key_changes_with_the_flags_and_the_version(monkeypatch, tmp_path):
    base = llama_build.build_key()
    assert llama_build.build_key(args=["-DGGML_NATIVE=ON"]) != base
    assert llama_build.build_key(version="0.0.1") != base
    monkeypatch.setenv(llama_build.ARGS_ENV, "-DGGML_NATIVE=OFF -DGGML_AVX2=OFF")
    assert llama_build.build_key() != base  # user flags get their own wheel, never ours
    monkeypatch.setenv("STUDIO_NB_WHEELHOUSE", str(tmp_path))
    assert llama_build.wheel_dir().parent == tmp_path


def test_the_pinned_version_matches_the_constraints_file():
    pins = [line for line in (REPO / "constraints.txt").read_text().splitlines() if line.startswith("llama-cpp-python==")]
    assert pins == [f"llama-cpp-python=={llama_build.LLAMA_CPP_VERSION}"]


def test_ensure_reuses_the_kept_wheel_and_never_lets_pip_pick(monkeypatch, tmp_path):
    """The decision logic, isolated: builds and installs are recorded instead of run."""
    monkeypatch.setenv("STUDIO_NB_WHEELHOUSE", str(tmp_path))
    monkeypatch.setattr(llama_build, "is_current", lambda prefix=None: False)
    calls: list[tuple[str, str]] = []

    def fake_build(key, **kw):
        calls.append(("build", key))
        target = llama_build.wheel_dir(key)
        target.mkdir(parents=True)
        wheel = target / "llama_cpp_python-0.3.36-py3-none-linux_x86_64.whl"
        wheel.write_bytes(b"")
        return wheel

    monkeypatch.setattr(llama_build, "build", fake_build)
    monkeypatch.setattr(llama_build, "install", lambda wheel, key, **kw: calls.append(("install", str(wheel))))
    first = llama_build.ensure(log=lambda m: None)
    second = llama_build.ensure(log=lambda m: None)  # a fresh clone on the same machine
    assert [c[0] for c in calls] == ["build", "install", "install"]
    assert first == second and first.parent == llama_build.wheel_dir()


def test_the_build_command_bypasses_pips_cache():
    src = Path(llama_build.__file__).read_text()
    assert '"--no-cache-dir"' in src and '"--no-binary", "llama-cpp-python"' in src and '"--no-index"' in src


def test_this_environment_runs_the_portable_build():
    record = llama_build.installed_build()
    assert record is not None, f"llama-cpp-python was not installed by the set-up; fix: {llama_build.rebuild_command()}"
    assert record["key"] == llama_build.build_key() and "-DGGML_NATIVE=OFF" in record["cmake_args"]


@pytest.mark.slow
def test_the_self_test_generates_tokens_in_a_child_process():
    result = selftest.run()
    assert result.ok, result.report()
    assert result.tokens == 8 and result.signal is None and "passed" in result.summary


@pytest.mark.parametrize("sig", [signal.SIGILL, signal.SIGSEGV])
def test_a_child_killed_by_a_signal_is_named_with_the_cause_and_the_fix(sig):
    child = [sys.executable, "-c", f"import os, signal; os.kill(os.getpid(), signal.{sig.name})"]
    result = selftest.run(command=child)
    assert not result.ok and result.signal == sig.name
    report = result.report()
    assert sig.name in report and llama_build.rebuild_command() in report
    if sig == signal.SIGILL:
        assert "illegal instruction" in report and "-march=native" in report


def test_a_child_that_fails_without_a_signal_says_so():
    result = selftest.run(command=[sys.executable, "-c", "raise SystemExit('no model here')"])
    assert not result.ok and result.signal is None and "no model here" in result.summary


@pytest.mark.slow
def test_doctor_reports_the_self_test(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "studio_nb.cli", "--data-dir", str(tmp_path), "doctor"],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ok   generation self-test: passed" in out.stdout
    assert f"build {llama_build.build_key()}" in out.stdout


def test_show_prints_the_build_as_json():
    out = subprocess.run([sys.executable, "-m", "studio_nb.llama_build", "--show"], capture_output=True, text=True)
    info = json.loads(out.stdout)
    assert info["key"] == llama_build.build_key() and info["current"] is True
