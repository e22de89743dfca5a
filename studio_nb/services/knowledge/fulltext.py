"""The lexical index: SQLite FTS5 over each chunk's pre-tokenised terms, in the chunk store.

Why FTS5 (measured against the in-memory BM25 it replaced and bm25s in
``bench/lexical_engines.py``): it lives in the same SQLite file as the chunks, so it is
persisted with them, opening it costs nothing whatever the corpus size, and an ingest
changes exactly the rows of the files it replaces, in the same transaction (a crash
leaves index and chunks consistent). BM25 ranking (k1 1.2, b 0.75) runs in SQLite's C code.

FTS5 finds the candidates (its own BM25 picks the best ``n`` of a domain); ``bm25.py``
scores them again with term weights of all the domains searched together, so hits of a
small domain (a user's one-file upload) and of a large one are comparable — FTS5's own
weights are per table and floored at zero for a term in half the rows, which made a
small domain's hits score nothing. The triggers keep the two counts that needs
(chunks and terms, ``meta`` keys ``fts_chunks`` and ``fts_terms``) in the same
transaction as the rows.

The terms come from the one tokenizer (``services.tokenizer``: jieba words and
character bigrams for Chinese, stemmed words for Latin text), joined by spaces and stored
in ``chunks.tokens``; FTS5's ``unicode61`` tokenizer only splits them at those spaces
(``_`` and ``.`` are kept inside a term, as in ``max_tokens`` or ``1.2``). The FTS table
is *external content* (``content='chunks'``): it stores postings, not a second copy of
the text, and triggers on ``chunks`` keep it in step — also for the rows a file's
deletion cascades to.

Data dirs made before this index existed have no FTS table: ``migrate`` creates it and
indexes the stored terms once (a few seconds for 100k chunks), the first time a domain
is opened.
"""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 2  # 1: tokens only (the index was rebuilt in memory at each start)

_CREATE = """
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    tokens, content='chunks', content_rowid='id', tokenize="unicode61 remove_diacritics 0 tokenchars '._'");
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_terms USING fts5vocab(chunks_fts, 'row');
CREATE TRIGGER IF NOT EXISTS chunks_fts_add AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, tokens) VALUES (new.id, new.tokens);
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'fts_chunks';
    UPDATE meta SET value = CAST(value AS INTEGER) + {n_new} WHERE key = 'fts_terms';
END;
CREATE TRIGGER IF NOT EXISTS chunks_fts_drop AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, tokens) VALUES ('delete', old.id, old.tokens);
    UPDATE meta SET value = CAST(value AS INTEGER) - 1 WHERE key = 'fts_chunks';
    UPDATE meta SET value = CAST(value AS INTEGER) - {n_old} WHERE key = 'fts_terms';
END;
"""


def _n_terms(column: str) -> str:
    """SQL for the number of space-separated terms in ``column``."""
    return f"(length({column}) - length(replace({column}, ' ', '')) + ({column} != ''))"


_CREATE = _CREATE.format(n_new=_n_terms("new.tokens"), n_old=_n_terms("old.tokens"))


def migrate(db: sqlite3.Connection) -> bool:
    """Create the index (and its triggers) where it is missing, filled from the stored
    terms; True when it had to be built. Run inside the store's schema transaction."""
    exists = db.execute("SELECT 1 FROM sqlite_master WHERE name='chunks_fts'").fetchone() is not None
    if not exists:
        db.execute("INSERT OR REPLACE INTO meta VALUES ('fts_chunks', (SELECT COUNT(*) FROM chunks))")
        db.execute(f"INSERT OR REPLACE INTO meta VALUES ('fts_terms', (SELECT COALESCE(SUM({_n_terms('tokens')}), 0) FROM chunks))")
    db.executescript(_CREATE)
    if not exists:
        db.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild')")
    db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
    return not exists


def match_expression(tokens: list[str]) -> str | None:
    """An FTS5 query matching any of ``tokens`` (each quoted: no operator syntax leaks in);
    a repeated term is repeated, so it weighs more, as BM25's query term frequency does."""
    quoted = ['"' + t.replace('"', '""') + '"' for t in tokens if t]
    return " OR ".join(quoted) if quoted else None


def candidates(db: sqlite3.Connection, tokens: list[str], n: int) -> list[tuple[int, str]]:
    """The best ``n`` chunks by FTS5's own BM25, as ``(chunk id, its terms)``."""
    expr = match_expression(tokens)
    if expr is None or n <= 0:
        return []
    return db.execute(
        "SELECT id, tokens FROM chunks WHERE id IN "
        "(SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY rank LIMIT ?)", (expr, n)
    ).fetchall()


def stats(db: sqlite3.Connection) -> tuple[int, int]:
    """(chunks, terms in all of them): what term weights and the mean length need."""
    rows = dict(db.execute("SELECT key, value FROM meta WHERE key IN ('fts_chunks', 'fts_terms')").fetchall())
    return int(rows.get("fts_chunks", 0)), int(rows.get("fts_terms", 0))


def document_frequency(db: sqlite3.Connection, term: str) -> int:
    """How many chunks contain ``term``."""
    row = db.execute("SELECT doc FROM chunks_terms WHERE term=?", (term,)).fetchone()
    return int(row[0]) if row else 0
