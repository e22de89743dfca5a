"""CJK-aware tokens, the FTS5 lexical index, fusion and .studioignore rules (no model needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

import numpy as np

from studio_nb.services.knowledge.bm25 import score, term_weights
from studio_nb.services.knowledge.store import ChunkStore, NewChunk
from studio_nb.services.knowledge.types import Piece
from studio_nb.services.knowledge.fusion import dense_weight, fuse
from studio_nb.services.text import cjk_share
from studio_nb.services.knowledge.ignore import IgnoreRules, walk_files
from studio_nb.services.tokenizer import stem, tokenize


def test_chinese_is_segmented_into_words_and_bigrams() -> None:
    toks = tokenize("如何构建向量数据库的索引")
    assert "数据库" in toks and "向量" in toks and "索引" in toks
    assert "如何" not in toks and "的" not in toks  # stopwords gone, single characters dropped
    assert "数据" in toks  # a bigram / search-mode sub-word


def test_english_words_are_lowercased_stemmed_and_identifiers_split() -> None:
    toks = tokenize("The Embeddings are Running in LocalEnvironment via map_function")
    assert "the" not in toks and "are" not in toks
    assert "embed" in toks and "run" in toks
    assert {"localenvironment", "local", "environment"} <= set(toks)
    assert {"map_function", "map", "function"} <= set(toks)
    assert stem("queries") == "query" and stem("configured") == stem("configure")


def _lexical(store: ChunkStore, tokens: list[str], k: int) -> list[tuple[int, float]]:
    chunks, terms = store.term_stats()
    idf = term_weights(tokens, [(chunks, {t: store.df(t) for t in tokens})])
    return score(store.candidates(tokens, k), tokens, idf, terms / max(chunks, 1))


def _store_with(tmp_path: Path, files: dict[str, list[str]]) -> ChunkStore:
    store = ChunkStore(tmp_path / "chunks.sqlite3", "d")
    for source, texts in files.items():
        new = [NewChunk(Piece("", 1, 1, t, "text"), f"{source}{i}", tokenize(t), np.zeros(4, np.float32))
               for i, t in enumerate(texts)]
        store.replace_file("/root", source, source, 1, new, 0.0)
    return store


def test_the_full_text_index_ranks_the_chunk_with_the_rare_term_first(tmp_path: Path) -> None:
    store = _store_with(tmp_path, {"a.md": ["SAGE 安装指南：使用 pip 安装"], "b.md": ["重排序组件对检索结果进行重新排序"],
                                   "c.md": ["流处理 pipeline 的 map 算子, see max_tokens 1.2"]})
    ids = {c.source: i for i, c in store.chunks(list(range(1, 10))).items()}
    hits = _lexical(store, tokenize("重排序"), k=3)
    assert hits[0][0] == ids["b.md"] and hits[0][1] > 0
    assert [i for i, _ in _lexical(store, tokenize("pip install"), k=3)] == [ids["a.md"]]
    assert _lexical(store, tokenize("完全无关的词语 zebra"), k=3) == []
    # identifiers and version numbers stay whole terms; quotes and operators in a query are only text
    assert [i for i, _ in _lexical(store, ["max_tokens"], 3)] == [ids["c.md"]] == [i for i, _ in _lexical(store, ["1.2"], 3)]
    assert _lexical(store, ['"', "OR", "NEAR(", "*"], 3) == []
    assert store.df("pip") == 1 and store.df("zebra") == 0
    assert store.term_stats() == (3, sum(len(tokenize(t)) for t in [
        "SAGE 安装指南：使用 pip 安装", "重排序组件对检索结果进行重新排序", "流处理 pipeline 的 map 算子, see max_tokens 1.2"]))


def test_replacing_or_removing_a_file_touches_only_its_rows_in_the_index(tmp_path: Path) -> None:
    store = _store_with(tmp_path, {"a.md": ["alpha beta"], "b.md": ["beta gamma"]})
    assert store.df("beta") == 2
    new = [NewChunk(Piece("", 1, 1, "delta", "text"), "x", ["delta"], np.zeros(4, np.float32))]
    store.replace_file("/root", "a.md", "a2", 1, new, 0.0)
    assert store.df("alpha") == 0 and store.df("beta") == 1 and store.df("delta") == 1
    assert store.term_stats() == (2, 3)  # delta; beta gamma
    store.remove_file("/root", "b.md")  # the chunks go by ON DELETE CASCADE; the trigger still runs
    assert store.df("beta") == 0 and store.df("gamma") == 0 and _lexical(store, ["gamma"], 5) == []
    assert store.term_stats() == (1, 1)
    assert [c.text for c in store.chunks([i for i, _ in _lexical(store, ["delta"], 5)]).values()] == ["delta"]


def test_fusion_rrf_and_score() -> None:
    dense = [("a", 0.9), ("b", 0.8), ("c", 0.1)]
    lexical = [("b", 12.0), ("c", 11.0)]
    assert [k for k, _ in fuse(dense, lexical, "rrf")][0] == "b"  # in both lists, near the top of each
    assert [k for k, _ in fuse(dense, lexical, "score")][0] == "b"
    assert [k for k, _ in fuse(dense, lexical, "rrf", w_dense=0.0)] == ["b", "c"]
    with pytest.raises(ValueError):
        fuse(dense, lexical, "nope")
    assert cjk_share("hello world") == 0 and cjk_share("向量数据库") == 1
    assert dense_weight("向量数据库", 0.3) == pytest.approx(0.3) and dense_weight("vector db", 0.3) == 1


def test_studioignore_rules(tmp_path: Path) -> None:
    rules = IgnoreRules(["# comment", "*.log", "build/", "/docs/draft*.md", "!keep.log", "secret.md"])
    assert rules.ignored("a/b/x.log") and not rules.ignored("a/keep.log")
    assert rules.ignored("build", is_dir=True) and not rules.ignored("build", is_dir=False)
    assert rules.ignored("docs/draft1.md") and not rules.ignored("other/docs/draft1.md")
    assert rules.ignored("deep/secret.md")
    assert rules.ignored(".git", True) and rules.ignored("x/__pycache__", True) and rules.ignored("node_modules", True)

    for rel in ["a.md", "build/b.md", "docs/draft2.md", "docs/final.md", ".ipynb_checkpoints/c.md", "sub/x.log"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    (tmp_path / ".studioignore").write_text("build/\n/docs/draft*.md\n*.log\n")
    found = [rel for _, rel in walk_files(tmp_path, IgnoreRules.from_root(tmp_path))]
    assert found == ["a.md", "docs/final.md"]
