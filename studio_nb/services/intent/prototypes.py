"""Labelled prototype messages (``prototypes.yaml``) that the embedding stage compares to.

They live in a data file inside the package, not in code, so they can be reviewed and
extended without touching logic; a user can pass their own file (or list) instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Iterable

from studio_nb.errors import ConfigError
from studio_nb.services.intent.types import Intent

PACKAGE_FILE = "prototypes.yaml"


@dataclass(frozen=True)
class Prototype:
    text: str
    intent: Intent
    lang: str


def _read_yaml(path: str | os.PathLike | None) -> object:
    import yaml

    if path is None:
        raw = resources.files(__package__).joinpath(PACKAGE_FILE).read_text(encoding="utf-8")
        where = f"{__package__}/{PACKAGE_FILE}"
    else:
        where = str(path)
        try:
            raw = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read prototype file {where}: {exc}; pass an existing YAML file") from exc
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"prototype file {where} is not valid YAML: {exc}") from exc


def load_prototypes(path: str | os.PathLike | None = None) -> list[Prototype]:
    """Read ``{INTENT: {lang: [text, ...]}}``; ConfigError says what is wrong and where."""
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"prototype file {path or PACKAGE_FILE} must map intent names to {{lang: [texts]}}")
    out: list[Prototype] = []
    for name, by_lang in data.items():
        intent = Intent.parse(name)
        if not isinstance(by_lang, dict):
            raise ConfigError(f"prototypes for {name}: expected {{lang: [texts]}}, got {type(by_lang).__name__}")
        for lang, texts in by_lang.items():
            out.extend(Prototype(t, intent, str(lang)) for t in _texts(texts, f"{name}.{lang}"))
    return coerce_prototypes(out)


def _texts(texts: object, where: str) -> Iterable[str]:
    if not isinstance(texts, list) or not all(isinstance(t, str) and t.strip() for t in texts):
        raise ConfigError(f"prototypes {where}: expected a list of non-empty strings")
    return [t.strip() for t in texts]


def coerce_prototypes(items: Iterable[Prototype | tuple]) -> list[Prototype]:
    """Accept Prototype objects or ``(text, intent[, lang])`` tuples; every intent must appear."""
    out = []
    for item in items:
        if not isinstance(item, Prototype):
            text, intent, *rest = item
            item = Prototype(str(text), Intent.parse(intent), str(rest[0]) if rest else "en")
        out.append(item)
    missing = set(Intent) - {p.intent for p in out}
    if missing:
        names = ", ".join(sorted(i.value for i in missing))
        raise ConfigError(f"prototypes cover no example of {names}; add at least one message for each intent")
    return out
