"""The generation self-test: load the chat model and generate a few tokens in a child process.

A llama.cpp build that uses instructions the CPU cannot run (AMX in a VM, AVX-512 on a
laptop) does not fail with an exception: the kernel kills the process with SIGILL at the
first generated token. Run in the caller's process, that would take down a notebook
kernel or a Jupyter server; run here, in a child, it becomes a diagnosis: which signal,
the likely cause, and the command that rebuilds llama-cpp-python portably.

    python -m studio_nb.selftest          # prints the verdict; exit 0 when generation works
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

CHILD_FLAG = "--child"


@dataclass(frozen=True)
class SelfTestResult:
    ok: bool
    summary: str  # one line for `studio-nb doctor`
    seconds: float
    tokens: int = 0
    signal: str | None = None  # e.g. "SIGILL" when the child was killed
    advice: list[str] = field(default_factory=list)  # what to do about a failure, line by line

    def report(self) -> str:
        return "\n".join([self.summary, *("  " + line for line in self.advice)])


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _signal_advice(sig: str) -> list[str]:
    from studio_nb import llama_build

    record = llama_build.installed_build() or {}
    flags = sorted(f for f in cpu_flags() if f.startswith(("avx512", "amx")))
    lines = []
    if sig == "SIGILL":
        lines.append(
            "SIGILL means an illegal instruction: llama.cpp was compiled for CPU features this machine "
            "cannot run (typically a build made with -march=native on another CPU, or one that uses AMX "
            "or AVX-512 where the CPU advertises but cannot execute them, as in some virtual machines)."
        )
    else:
        lines.append(
            f"the model process was killed by {sig}: llama.cpp crashed in native code. With a build made "
            "with -march=native this is how unusable AMX tiles fail in some virtual machines (seen: SIGSEGV "
            "at the first token); a portable build avoids them."
        )
    if record:
        lines.append(f"installed build: {record.get('key')} with {' '.join(record.get('cmake_args', []))}")
    else:
        lines.append("installed build: not one studio-nb made (pip built or reused a wheel with unknown flags)")
    if flags:
        lines.append(f"this CPU advertises: {' '.join(flags)}")
    lines.append(f"fix: {llama_build.rebuild_command()}   (portable AVX2 build, about 4 minutes)")
    return lines


def run(model_path: str | None = None, *, timeout_s: float = 120.0, command: list[str] | None = None) -> SelfTestResult:
    """Generate a few tokens in a child process and say what happened.

    ``command`` replaces the child's command line (tests use it to stand in for a
    crashing build); by default it is this module with ``--child``.
    """
    cmd = command or [sys.executable, "-m", "studio_nb.selftest", CHILD_FLAG] + ([model_path] if model_path else [])
    started = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return SelfTestResult(False, f"generation self-test: no answer within {timeout_s:.0f} s", timeout_s,
                              advice=["the model loads but generates nothing; check CPU load and n_threads"])
    took = time.perf_counter() - started
    if proc.returncode < 0:
        try:
            sig = signal.Signals(-proc.returncode).name
        except ValueError:
            sig = f"signal {-proc.returncode}"
        return SelfTestResult(False, f"generation self-test: FAILED, the model process was killed by {sig}",
                              took, signal=sig, advice=_signal_advice(sig))
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        return SelfTestResult(False, f"generation self-test: FAILED: {last}", took,
                              advice=["run `studio-nb doctor` to check the model files and packages"])
    try:
        info = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return SelfTestResult(False, "generation self-test: FAILED: the child printed no result", took)
    variant = f", CPU variant {info['variant']}" if info.get("variant") else ""
    return SelfTestResult(
        True,
        f"generation self-test: passed ({info['tokens']} tokens at {info['tokens_per_s']:.0f} tokens/s{variant})",
        took,
        tokens=int(info["tokens"]),
    )


def _child(model_path: str | None) -> None:
    """Runs in the child: load the model, generate 8 tokens greedily, print JSON."""
    from studio_nb.services.inference.backends import load_cpu_backends
    from studio_nb.services.models import default_chat_model_path

    variant = load_cpu_backends()
    from llama_cpp import Llama

    from studio_nb.services.inference.llama_local import default_threads

    llm = Llama(model_path=model_path or str(default_chat_model_path()), n_ctx=256, n_threads=default_threads(),
                seed=0, verbose=False)
    prompt = llm.tokenize(b"The capital of France is")
    n, t0 = 0, time.perf_counter()
    for _ in llm.generate(prompt, temp=0.0):
        n += 1
        if n == 8:
            break
    rate = n / max(time.perf_counter() - t0, 1e-9)
    print(json.dumps({"tokens": n, "tokens_per_s": rate, "variant": variant}))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == CHILD_FLAG:
        _child(argv[1] if len(argv) > 1 else None)
        return 0
    result = run(argv[0] if argv else None)
    print(result.report())
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
