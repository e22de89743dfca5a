"""Ingesting a file or folder into a domain, incrementally.

Each file is keyed by its path relative to the ingested root and its content hash: an
unchanged file costs one hash, a changed file has its chunks replaced, a file gone from
the folder (or now ignored) has its chunks removed. Inside a changed file, a chunk whose
text did not change keeps its stored vector, so editing one paragraph re-embeds one
chunk. A file that cannot be read or parsed is reported and keeps its previous chunks.
With ``mirror=True`` the domain holds only what is at the path: files ingested from any
other root go (the bundled docs, when the package moved to another folder or checkout,
would otherwise be indexed twice and quoted twice).

Embedding is the slow part, so all new chunks of one ingest are embedded together,
longest first (as sentence-transformers itself orders a batch: less padding), in large
slices under one progress bar. Meanwhile a second thread cuts the same chunks into BM25
terms (jieba for Chinese): torch releases the GIL while it computes, so the lexical index
costs almost nothing on top of the embedding (bench/retrieval.py: ingest vs raw encode).

With ``limits`` (what a server passes for an upload, limits.py) an ingest that would cost
too much stops before anything is embedded — files are counted as they are split,
chunks after each file — and stores nothing; ``control`` cancels it between files and
embedding slices and sees its progress. Without them it runs as it always did.

Where the splitting and the embedding run is the ``work`` strategy's business: this
process (``LOCAL``, the default) or the workers of a Ray cluster (``ray_ingest.RayWork``);
either way the driver diffs, reuses vectors and writes to the one store.
"""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio_nb.errors import ConfigError
from studio_nb.services.knowledge.domain import Domain
from studio_nb.services.knowledge.ignore import IgnoreRules, walk_files
from studio_nb.services.knowledge.limits import IngestControl, IngestLimits
from studio_nb.services.tokenizer import tokenize
from studio_nb.services.knowledge.split_text import SplitConfig
from studio_nb.services.knowledge.splitters import SkipFile, split_file, supported
from studio_nb.services.knowledge.store import NewChunk
from studio_nb.services.knowledge.types import IngestReport, Piece


def embed_text(source: str, piece: Piece) -> str:
    """What the retrievers see of a chunk: where it is from, its heading path, its text."""
    title = f"{source} § {piece.heading}" if piece.heading else source
    return f"{title}\n{piece.text}"


@dataclass
class _Pending:
    source: str
    hash: str
    size: int
    pieces: list[Piece]


def _targets(path: Path) -> tuple[Path, list[tuple[Path, str]], bool]:
    """(root, [(file, relative path)], is_folder) for an ingest of ``path``."""
    if path.is_dir():
        rules = IgnoreRules.from_root(path)
        return path, [(f, rel) for f, rel in walk_files(path, rules) if supported(f)], True
    if path.is_file():
        return path.parent, [(path, path.name)], False
    raise ConfigError(f"cannot ingest {path}: no such file or folder; fix: pass an existing file or folder path")


@dataclass
class Scan:
    """What reading a folder found: every file seen, and how many were unchanged."""

    seen: set[str]
    unchanged: int = 0


def changed_files(files: list[tuple[Path, str]], known: dict[str, str], errors: list[str],
                  control: IngestControl | None, scan: Scan):
    """Read and hash every file; yield ``(file, rel, digest, bytes)`` of the new or changed
    ones (an unchanged file costs its hash). ``scan`` counts the rest."""
    for n, (file, rel) in enumerate(files):
        if control is not None:
            control.progress("reading", n, len(files))
        scan.seen.add(rel)
        try:
            data = file.read_bytes()
        except OSError as exc:
            errors.append(f"{rel}: unreadable ({exc.strerror or exc})")
            continue
        digest = hashlib.sha256(data).hexdigest()
        if known.get(rel) == digest:
            scan.unchanged += 1
            continue
        yield file, rel, digest, data


def _read(files: list[tuple[Path, str]], known: dict[str, str], cfg: SplitConfig, errors: list[str],
          limits: IngestLimits, control: IngestControl | None):
    """Hash every file; split the new or changed ones here. Returns (pending, unchanged, seen)."""
    pending: list[_Pending] = []
    scan, chunks = Scan(set()), 0
    for file, rel, digest, data in changed_files(files, known, errors, control, scan):
        try:
            pieces = split_file(file, data, cfg, limits, control, rel)
        except SkipFile as exc:
            errors.append(f"{rel}: {exc}")
            continue
        chunks += len(pieces)
        limits.check("max_chunks", chunks, f"the files up to {rel} make {chunks:,} chunks")
        pending.append(_Pending(rel, digest, len(data), pieces))
    return pending, scan.unchanged, scan.seen


def _embed(texts: list[str], embedder, batch_size: int, progress: bool,
           control: IngestControl | None = None) -> np.ndarray:
    """Vectors of ``texts`` in their order, embedded longest-first in slices."""
    from tqdm.auto import tqdm

    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    step = batch_size * 8
    with tqdm(total=len(texts), desc="embedding chunks", unit="chunk", disable=not progress or not texts) as bar:
        for lo in range(0, len(order), step):
            if control is not None:
                control.progress("embedding", lo, len(texts))
            idx = order[lo : lo + step]
            out[idx] = embedder.encode([texts[i] for i in idx], batch_size=batch_size, progress=False)
            bar.update(len(idx))
    return out


class LocalWork:
    """Split and embed in this process: the embedding model on the calling thread, the
    terms cut beside it on a second one."""

    name = "local"

    def read(self, files, known, cfg, errors, limits, control):
        return _read(files, known, cfg, errors, limits, control)

    def vectors_and_terms(self, texts: list[list[str]], todo: list[str], embedder, batch_size: int, progress: bool,
                          control: IngestControl | None) -> tuple[np.ndarray | None, list[list[list[str]]]]:
        """Vectors of ``todo`` and the terms of every text in ``texts`` (per file)."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="studio-ingest-terms") as pool:
            terms = pool.submit(lambda: [[tokenize(t) for t in ts] for ts in texts])  # beside the embedding
            vecs = _embed(todo, embedder, batch_size, progress, control) if todo else None
            return vecs, terms.result()


LOCAL = LocalWork()


def ingest_path(
    domain: Domain, path: Path, embedder, cfg: SplitConfig, *, progress: bool = True, batch_size: int = 32,
    mirror: bool = False, limits: IngestLimits | None = None, control: IngestControl | None = None,
    work=None,
) -> IngestReport:
    """Bring ``domain`` in line with the files at ``path`` (see the module docstring)."""
    while not domain.ingest_lock.acquire(timeout=0.25):  # another ingest of this domain runs
        if control is not None:
            control.progress("waiting", 0, 0)
    try:
        return _ingest(domain, path, embedder, cfg, progress, batch_size, mirror, limits or IngestLimits(), control,
                       work or LOCAL)
    finally:
        domain.ingest_lock.release()


def _ingest(domain: Domain, path: Path, embedder, cfg: SplitConfig, progress: bool, batch_size: int,
            mirror: bool, limits: IngestLimits, control: IngestControl | None, work) -> IngestReport:
    t0 = time.perf_counter()
    path = Path(path).expanduser().resolve()
    root, files, is_folder = _targets(path)
    known = domain.store.file_hashes(str(root))
    errors: list[str] = []
    pending, unchanged, seen = work.read(files, known, cfg, errors, limits, control)
    removed = sorted(s for s in known if s not in seen) if is_folder else []

    # chunks whose text is unchanged keep their vectors; the rest are embedded once each
    texts = [[embed_text(p.source, piece) for piece in p.pieces] for p in pending]
    hashes = [[hashlib.sha256(t.encode()).hexdigest()[:32] for t in ts] for ts in texts]
    reuse: dict[str, np.ndarray] = {}
    replaced = 0
    for p in pending:
        if p.source in known:
            reuse.update(domain.store.old_vectors(str(root), p.source))
            replaced += domain.store.file_chunk_count(str(root), p.source)
    if limits.max_user_chunks is not None:
        after = limits.user_chunks + sum(len(p.pieces) for p in pending) - replaced
        limits.check("max_user_chunks", after, f"this ingest would bring your domains to {after:,} chunks "
                     f"(they hold {limits.user_chunks:,})")
    todo = sorted({h: t for ts, hs in zip(texts, hashes) for t, h in zip(ts, hs) if h not in reuse}.items())
    vecs, tokens = work.vectors_and_terms(texts, [t for _, t in todo], embedder, batch_size, progress, control)
    if todo:
        reuse.update({h: v for (h, _), v in zip(todo, vecs)})

    changed = []
    for p, ts, hs, toks in zip(pending, texts, hashes, tokens):
        new = [NewChunk(piece, h, tok, reuse[h]) for piece, h, tok in zip(p.pieces, hs, toks)]
        changed.append((p.source, p.hash, p.size, new))
    if control is not None:
        control.progress("saving", len(changed), len(changed))  # the last point where it can stop
    added, dropped = domain.apply(str(root), changed, removed)
    n_removed = len(removed)
    for other in domain.store.roots() if mirror else ():
        if other != str(root):
            gone = sorted(domain.store.file_hashes(other))
            dropped += domain.apply(other, [], gone)[1]
            n_removed += len(gone)
    return IngestReport(
        domain=domain.name, files_seen=len(seen), files_changed=len(pending), files_unchanged=unchanged,
        files_removed=n_removed, chunks_added=added, chunks_removed=dropped, errors=tuple(errors),
        seconds=time.perf_counter() - t0,
    )
