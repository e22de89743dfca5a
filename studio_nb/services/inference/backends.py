"""Pick llama.cpp's CPU code for this machine when the build ships several variants.

A llama-cpp-python built with ``GGML_BACKEND_DL`` and ``GGML_CPU_ALL_VARIANTS`` holds one
``libggml-cpu-<variant>.so`` per CPU generation (haswell, skylakex, icelake, ...) and
none linked in. llama.cpp would look for them next to the Python executable and find
nothing, so they must be loaded by hand before a model is. ggml's own choice
(``ggml_backend_load_all``) scores each variant by the CPUID flags alone; a CPU in a
virtual machine can advertise AMX (and the kernel can even grant it) while executing an
AMX instruction still raises SIGILL. The AMX variant is therefore skipped unless the
user names it (``STUDIO_NB_GGML_CPU=sapphirerapids``).

For an ordinary single-variant build (the project's default) this does nothing.
"""

from __future__ import annotations

import ctypes
import os
import re
import threading
from pathlib import Path

#: variants whose code uses AMX tile instructions (see ggml/src/CMakeLists.txt)
AMX_VARIANTS = frozenset({"sapphirerapids"})
_VARIANT = re.compile(r"^libggml-cpu-(?P<name>[\w.]+)\.so$")
_loaded: dict[str, str | None] = {}
_lock = threading.Lock()


def variant_files(lib_dir: Path) -> dict[str, Path]:
    """``{variant name: path}`` of the CPU backend variants of a build (empty for a plain build).

    llama-cpp-python 0.3.36 installs them as CMake MODULE libraries into ``bin/`` at the
    top of site-packages, not next to ``libllama.so``; both places are searched.
    """
    lib_dir = Path(lib_dir)
    found = {}
    for path in [*lib_dir.glob("libggml-cpu-*.so"), *(lib_dir.parent.parent / "bin").glob("libggml-cpu-*.so")]:
        m = _VARIANT.match(path.name)
        if m:
            found[m.group("name")] = path
    return found


def _score(path: Path) -> int:
    """ggml's own CPUID score of a variant (0: this CPU lacks what it was built for).

    Loading a variant only runs its initialisers, never its vector code, so it is safe
    even for a variant this CPU cannot execute."""
    lib = ctypes.CDLL(str(path), mode=os.RTLD_LOCAL | getattr(os, "RTLD_NOW", 2))
    fn = getattr(lib, "ggml_backend_score", None)
    if fn is None:
        return 0
    fn.restype = ctypes.c_int
    return int(fn())


def choose_variant(lib_dir: Path, forced: str | None = None) -> str | None:
    """The variant to load: ``forced`` if given, else the best-scoring one without AMX."""
    files = variant_files(lib_dir)
    if not files:
        return None
    # the variants link against libggml-base but their RPATH is their own folder
    ctypes.CDLL(str(Path(lib_dir) / "libggml-base.so"), mode=getattr(os, "RTLD_GLOBAL", 0x100))
    if forced:
        if forced not in files:
            raise ValueError(f"STUDIO_NB_GGML_CPU={forced!r} but this build has only {sorted(files)}")
        return forced
    scores = {name: _score(path) for name, path in files.items() if name not in AMX_VARIANTS}
    best = max(scores, key=lambda n: scores[n], default=None)
    if best is None or scores[best] <= 0:
        raise RuntimeError(f"no CPU backend variant in {lib_dir} runs on this CPU (scores {scores})")
    return best


def load_cpu_backends(lib_dir: str | os.PathLike | None = None) -> str | None:
    """Register the chosen CPU variant with ggml (once per process); returns its name.

    ``lib_dir`` defaults to the installed ``llama_cpp/lib``. Returns None for a build
    whose CPU backend is linked in (nothing to load).
    """
    if lib_dir is None:
        import importlib.util

        spec = importlib.util.find_spec("llama_cpp")
        if spec is None or not spec.submodule_search_locations:
            return None
        lib_dir = Path(list(spec.submodule_search_locations)[0]) / "lib"
    lib_dir = Path(lib_dir)
    key = str(lib_dir.resolve())
    with _lock:
        if key in _loaded:
            return _loaded[key]
        variant = choose_variant(lib_dir, os.environ.get("STUDIO_NB_GGML_CPU") or None)
        if variant is not None:
            ggml = ctypes.CDLL(str(lib_dir / "libggml.so"), mode=getattr(os, "RTLD_GLOBAL", 0x100))
            ggml.ggml_backend_load.restype = ctypes.c_void_p
            ggml.ggml_backend_load.argtypes = [ctypes.c_char_p]
            if not ggml.ggml_backend_load(str(variant_files(lib_dir)[variant]).encode()):
                raise RuntimeError(f"ggml could not load the CPU backend {variant!r} from {lib_dir}")
        _loaded[key] = variant
        return variant
