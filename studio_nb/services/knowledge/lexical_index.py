"""The lexical index of one domain: tantivy over each chunk's pre-tokenised terms.

Why tantivy (measured beside SQLite FTS5, bm25s and the in-memory BM25 it replaced, on
the same chunks, in ``bench/lexical_engines.py``): at 100k chunks it answers in ~2 ms
(p50) where FTS5's ranked OR query scores every matching row (~200 ms), opens in a
millisecond (its segments are memory-mapped) where the in-memory BM25 was rebuilt at
every start (~14-50 s and 1 GB), and it updates in place: replacing a file's chunks
deletes their ids and adds the new rows in one commit (bm25s can only be rebuilt).

The terms come from the one tokenizer (``services.tokenizer``), stored space-separated
in the chunk store; tantivy's ``whitespace`` tokenizer only splits them again, so a term
is exactly what the tokenizer made (``max_tokens``, ``1.2``, ``知识库``). Each document is
a chunk id (indexed, fast) and its terms (frequencies, no positions). The index lives in
``<domain>/lexical/``, owner-only like the rest of the domain (tantivy's new files are
tightened after each commit); SQLite stays the truth, and ``lexical.gen`` records the store
generation the index matches, so an index behind the store (a crash between the two
commits) is rebuilt from the stored terms at the next open — as is a missing one (data
dirs from before this index: the migration). tantivy is imported on first use.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Iterable

from studio_nb.services import private_files

WRITER_HEAP = 20_000_000  # bytes tantivy may buffer before it writes a segment
LOCK_WAIT_S = 60.0  # how long a write waits for another process's writer on the same index


def _schema():
    import tantivy

    sb = tantivy.SchemaBuilder()
    sb.add_integer_field("id", stored=False, indexed=True, fast=True)
    sb.add_text_field("terms", stored=False, tokenizer_name="whitespace", index_option="freq")
    return sb.build()


class LexicalIndex:
    """Search, update and rebuild one domain's tantivy index; searches may run from any
    thread, writes are serialised by the domain."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._index = None
        self._schema = None

    def open(self) -> bool:
        """Open the index on disk; False when there is none (or it cannot be read)."""
        import tantivy

        try:
            if not tantivy.Index.exists(str(self.path)):
                return False
            self._index = tantivy.Index.open(str(self.path))
            self._schema = self._index.schema
            self._index.reload()
            return True
        except (ValueError, OSError, RuntimeError):
            self._index = None
            return False

    def rebuild(self, rows: Iterable[tuple[int, str]]) -> int:
        """A fresh index of ``(chunk id, space-separated terms)``; returns how many."""
        import tantivy

        self.close()
        shutil.rmtree(self.path, ignore_errors=True)
        private_files.make_dir(self.path)
        self._schema = _schema()
        self._index = tantivy.Index(self._schema, path=str(self.path))
        n = 0
        writer = self._writer()
        for chunk_id, terms in rows:
            writer.add_document(tantivy.Document(id=int(chunk_id), terms=terms))
            n += 1
        writer.commit()
        writer.wait_merging_threads()
        private_files.tighten_tree(self.path)  # tantivy's files are born with the umask's mode
        self._index.reload()
        return n

    def update(self, removed: Iterable[int], added: Iterable[tuple[int, str]]) -> None:
        """Delete the ``removed`` chunk ids and add ``added`` rows, in one commit."""
        import tantivy

        writer = self._writer()
        for chunk_id in removed:
            writer.delete_documents_by_term("id", int(chunk_id))
        for chunk_id, terms in added:
            writer.add_document(tantivy.Document(id=int(chunk_id), terms=terms))
        writer.commit()
        writer.wait_merging_threads()  # small segments are merged now, not left to pile up
        private_files.tighten_tree(self.path)
        self._index.reload()

    def _writer(self):
        """tantivy's writer (one per index across processes: wait for another's to finish)."""
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                return self._index.writer(heap_size=WRITER_HEAP, num_threads=1)
            except ValueError:  # "LockBusy": another process is writing this index
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def reload(self) -> None:
        """See what another process committed since."""
        if self._index is not None:
            self._index.reload()

    def candidates(self, tokens: list[str], n: int) -> list[int]:
        """The best ``n`` chunk ids by tantivy's BM25 for any of ``tokens``."""
        import tantivy

        terms = list(dict.fromkeys(t for t in tokens if t))
        if self._index is None or not terms or n <= 0:
            return []
        query = tantivy.Query.boolean_query(
            [(tantivy.Occur.Should, tantivy.Query.term_query(self._schema, "terms", t)) for t in terms])
        searcher = self._index.searcher()
        hits = searcher.search(query, n).hits
        return [int(i) for i in searcher.fast_field_values("id", [addr for _, addr in hits])]

    def df(self, term: str) -> int:
        """How many chunks contain ``term`` (a deleted chunk counts until its segment is merged)."""
        return self.dfs([term])[term]

    def dfs(self, terms) -> dict[str, int]:
        """``df`` of each of ``terms``, read from one searcher."""
        if self._index is None:
            return {t: 0 for t in terms}
        searcher = self._index.searcher()
        return {t: int(searcher.doc_freq("terms", t)) if t else 0 for t in terms}

    def close(self) -> None:
        self._index = None
