"""CJK-aware tokens, BM25 ranking, fusion and .studioignore rules (no model needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio_nb.services.knowledge.bm25 import BM25Index
from studio_nb.services.knowledge.fusion import dense_weight, fuse
from studio_nb.services.text import cjk_share
from studio_nb.services.knowledge.ignore import IgnoreRules, walk_files
from studio_nb.services.knowledge.lexical_tokens import stem, tokenize


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


def test_bm25_ranks_the_document_with_the_rare_term_first() -> None:
    docs = [
        (10, tokenize("SAGE 安装指南：使用 pip 安装")),
        (11, tokenize("重排序组件对检索结果进行重新排序")),
        (12, tokenize("流处理 pipeline 的 map 算子")),
    ]
    index = BM25Index(docs)
    hits = index.search(tokenize("重排序"), k=3)
    assert hits[0][0] == 11 and hits[0][1] > 0
    assert [i for i, _ in index.search(tokenize("pip install"), k=3)] == [10]
    assert index.search(tokenize("完全无关的词语 zebra"), k=3) == []
    assert index.nbytes > 0 and len(index) == 3


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
