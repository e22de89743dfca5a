"""Build llama-cpp-python once per machine with portable flags, keep the wheel, install it.

Why this exists (see bench/llama_builds.py for the measurements):

- llama-cpp-python has no wheel on PyPI for Linux; pip compiles it from source and, by
  default, with ``-march=native``. On a CPU that advertises AMX the result executes AMX
  tile instructions, and in a virtual machine that may not run them the process dies with
  SIGILL at the first generated token.
- pip caches the wheel it built under the package version only, not the build flags or
  the CPU: a wheel built on one machine is reused on the next, whose CPU may lack what it
  was built for.

So the set-up never lets pip build or pick llama-cpp-python by itself. It builds the
pinned version with the flags below into a *wheelhouse keyed by version, machine and
flags* (``~/.cache/studio-nb/wheels/llama-cpp-python-0.3.36-<key>/``), never reading or
writing pip's own cache, and installs that wheel. A later set-up on the same machine
finds the wheel and takes seconds; a foreign wheel in pip's cache is never used.

    python -m studio_nb.llama_build            # ensure the venv runs our build (the Makefile calls this)
    python -m studio_nb.llama_build --rebuild  # build again even if the wheel exists
    python -m studio_nb.llama_build --show     # flags, key, wheelhouse, what is installed

Standard library only: it runs before anything else is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LLAMA_CPP_VERSION = "0.3.36"

#: Runs on every x86-64 CPU with AVX2 (Intel Haswell 2013+, AMD Zen): the fastest build
#: that is portable, measured against AVX-512 and runtime-dispatched builds in
#: bench/llama_builds.py. Never GGML_NATIVE (-march=native). LLAVA_BUILD=OFF skips the
#: multimodal library studio-nb does not use (a third of the compile time).
X86_64_ARGS = (
    "-DGGML_NATIVE=OFF",
    "-DGGML_AVX=ON",
    "-DGGML_AVX2=ON",
    "-DGGML_FMA=ON",
    "-DGGML_F16C=ON",
    "-DGGML_BMI2=ON",
    "-DGGML_AVX512=OFF",
    "-DLLAVA_BUILD=OFF",
)
#: Other architectures (aarch64): llama.cpp's generic build for the architecture, not the host.
OTHER_ARGS = ("-DGGML_NATIVE=OFF", "-DLLAVA_BUILD=OFF")
#: Set this to build with other flags (they become part of the key, so they never mix).
ARGS_ENV = "STUDIO_NB_LLAMA_CMAKE_ARGS"
MARKER = "studio-nb-llama-build.json"


def cmake_args(machine: str | None = None) -> list[str]:
    """The CMake flags of the build: ``$STUDIO_NB_LLAMA_CMAKE_ARGS``, else the portable set."""
    override = os.environ.get(ARGS_ENV, "").split()
    if override:
        return override
    machine = machine or platform.machine()
    return list(X86_64_ARGS if machine in ("x86_64", "AMD64") else OTHER_ARGS)


def build_key(version: str = LLAMA_CPP_VERSION, args: list[str] | None = None, machine: str | None = None) -> str:
    """What identifies a build: version, architecture, Python tag and flags (12 hex digits)."""
    ident = [version, machine or platform.machine(), sys.implementation.cache_tag, args or cmake_args(machine)]
    return hashlib.sha256(json.dumps(ident).encode()).hexdigest()[:12]


def wheelhouse() -> Path:
    """``$STUDIO_NB_WHEELHOUSE``, else ``$XDG_CACHE_HOME/studio-nb/wheels`` (``~/.cache/...``)."""
    if os.environ.get("STUDIO_NB_WHEELHOUSE"):
        return Path(os.environ["STUDIO_NB_WHEELHOUSE"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "studio-nb" / "wheels"


def wheel_dir(key: str | None = None) -> Path:
    return wheelhouse() / f"llama-cpp-python-{LLAMA_CPP_VERSION}-{key or build_key()}"


def find_wheel(key: str | None = None) -> Path | None:
    found = sorted(wheel_dir(key).glob("llama_cpp_python-*.whl"))
    return found[-1] if found else None


def marker_path(prefix: str | None = None) -> Path:
    """Where the installed build is recorded: in the environment (venv) itself."""
    return Path(prefix or sys.prefix) / MARKER


def llama_cpp_location() -> str | None:
    """The folder of the ``llama_cpp`` package Python would import (None if there is none)."""
    importlib.invalidate_caches()
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return None
    return str(Path(list(spec.submodule_search_locations)[0]).resolve())


def installed_build(prefix: str | None = None) -> dict | None:
    """The record of the build studio-nb installed, if it is the ``llama_cpp`` Python imports
    (not, say, another copy found first on ``PYTHONPATH``)."""
    try:
        record = json.loads(marker_path(prefix).read_text())
    except (OSError, ValueError):
        return None
    if record.get("location") and record["location"] != llama_cpp_location():
        return None
    return record


def is_current(prefix: str | None = None) -> bool:
    record = installed_build(prefix)
    return bool(record and record.get("key") == build_key() and llama_cpp_location() is not None)


# ---------------------------------------------------------------------- building
#: build progress as make ("[ 45%] Building ...") or ninja ("[12/130] Building ...") prints it
_PROGRESS = re.compile(r"^\[\s*(?:(\d+)%|(\d+)/(\d+))\]")


def build(key: str, *, python: str = sys.executable, log=print) -> Path:
    """Compile the pinned sdist with our flags into the wheelhouse; returns the wheel.

    pip runs with ``--no-cache-dir`` and ``--no-binary`` so that it neither reuses a
    wheel it cached earlier (built with unknown flags) nor stores ours where a later
    plain ``pip install`` would pick it up by version alone.
    """
    args = cmake_args()
    target = wheel_dir(key)
    log(f"building llama-cpp-python {LLAMA_CPP_VERSION} with {' '.join(args)}")
    log(f"  (compiles llama.cpp from source: about 4 minutes on 2 cores; kept in {target})")
    env = {
        **os.environ,
        "CMAKE_ARGS": " ".join(args),
        "CMAKE_BUILD_PARALLEL_LEVEL": str(os.cpu_count() or 2),
        "FORCE_CMAKE": "1",
    }
    env.pop("PIP_FIND_LINKS", None)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=target.parent, prefix=".building-")
    try:
        cmd = [
            python, "-m", "pip", "wheel", "-v", "--no-deps", "--no-cache-dir",
            "--no-binary", "llama-cpp-python", "-w", tmp, f"llama-cpp-python=={LLAMA_CPP_VERSION}",
        ]
        started, tail = time.monotonic(), []
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        last_shown = -1
        for line in proc.stdout:
            tail = (tail + [line.rstrip()])[-40:]
            m = _PROGRESS.match(line.strip())
            if m:
                percent = int(m.group(1)) if m.group(1) else 100 * int(m.group(2)) // max(int(m.group(3)), 1)
                if percent >= last_shown + 10:
                    last_shown = percent
                    log(f"  {percent:3d}% compiled ({time.monotonic() - started:.0f} s)")
        if proc.wait() != 0:
            log("\n".join(tail))
            raise SystemExit(
                "building llama-cpp-python failed (the last lines of the build log are above). It needs a C++ "
                "compiler and cmake: on Debian/Ubuntu `apt-get install -y build-essential cmake`."
            )
        wheels = list(Path(tmp).glob("llama_cpp_python-*.whl"))
        if len(wheels) != 1:
            raise SystemExit(f"pip wheel produced {wheels}, expected one llama_cpp_python wheel")
        (Path(tmp) / "build.json").write_text(json.dumps({
            "key": key, "version": LLAMA_CPP_VERSION, "cmake_args": args, "machine": platform.machine(),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "build_seconds": round(time.monotonic() - started),
        }, indent=2))
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)  # all or nothing: a half-built wheelhouse entry never exists
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"  built in {time.monotonic() - started:.0f} s")
    return find_wheel(key)


def install(wheel: Path, key: str, *, python: str = sys.executable, log=print) -> None:
    """Install exactly this wheel (no index, no cache) and record it in the environment."""
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", "--force-reinstall", "--no-index",
         "--no-cache-dir", str(wheel)],
        check=True,
    )
    record = {
        "key": key, "version": LLAMA_CPP_VERSION, "cmake_args": cmake_args(), "wheel": str(wheel),
        "location": llama_cpp_location(),
    }
    marker_path().write_text(json.dumps(record, indent=2))
    log(f"installed llama-cpp-python {LLAMA_CPP_VERSION} (build {key}) from {wheel.parent}")


def ensure(*, rebuild: bool = False, log=print) -> Path:
    """Make this environment run our build: reuse the installed one, else the kept wheel, else build."""
    key = build_key()
    if not rebuild and is_current():
        log(f"llama-cpp-python {LLAMA_CPP_VERSION}: build {key} already installed")
        return Path(installed_build()["wheel"])
    wheel = None if rebuild else find_wheel(key)
    if wheel is None:
        wheel = build(key, log=log)
    install(wheel, key, log=log)
    return wheel


def rebuild_command() -> str:
    """The exact command that rebuilds and reinstalls the portable build in this environment."""
    return f"{sys.executable} -m studio_nb.llama_build --rebuild"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m studio_nb.llama_build", description=__doc__.splitlines()[0])
    ap.add_argument("--rebuild", action="store_true", help="compile again even if the wheel is kept")
    ap.add_argument("--show", action="store_true", help="print flags, key, wheelhouse and the installed build")
    args = ap.parse_args(argv)
    if args.show:
        print(json.dumps({
            "version": LLAMA_CPP_VERSION, "cmake_args": cmake_args(), "key": build_key(),
            "wheel_dir": str(wheel_dir()), "kept_wheel": str(find_wheel() or ""),
            "installed": installed_build(), "current": is_current(),
        }, indent=2))
        return 0
    ensure(rebuild=args.rebuild, log=lambda msg: print(msg, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
