"""CJK-aware tokens, the FTS5 lexical index, fusion and .studioignore rules (no model needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

import numpy as np

from studio_nb.services.knowledge.domain import Domain
from studio_nb.services.knowledge.store import NewChunk
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


def _domain_with(tmp_path: Path, files: dict[str, list[str]]) -> Domain:
    dom = Domain.open("d", tmp_path / "d", dim=4)
    dom.apply("/root", [(source, source, 1, [NewChunk(Piece("", 1, 1, t, "text"), f"{source}{i}", tokenize(t),
                                                      np.full(4, 0.5, np.float32)) for i, t in enumerate(texts)])
                        for source, texts in files.items()], [])
    return dom


def _ids(dom: Domain, tokens: list[str]) -> list[int]:
    return [i for i, _ in dom.lexical(tokens, 3)]


def test_the_lexical_index_ranks_the_chunk_with_the_rare_term_first(tmp_path: Path) -> None:
    texts = {"a.md": ["SAGE 安装指南：使用 pip 安装"], "b.md": ["重排序组件对检索结果进行重新排序"],
             "c.md": ["流处理 pipeline 的 map 算子, see max_tokens 1.2"]}
    dom = _domain_with(tmp_path, texts)
    ids = {c.source: i for i, c in dom.chunks(list(range(1, 10))).items()}
    hits = dom.lexical(tokenize("重排序"), 3)
    assert hits[0][0] == ids["b.md"] and hits[0][1] > 0
    assert _ids(dom, tokenize("pip install")) == [ids["a.md"]]
    assert dom.lexical(tokenize("完全无关的词语 zebra"), 3) == []
    # identifiers and version numbers stay whole terms; quotes and operators in a query are only text
    assert _ids(dom, ["max_tokens"]) == [ids["c.md"]] == _ids(dom, ["1.2"])
    assert dom.lexical(['"', "OR", "NEAR(", "*", ""], 3) == []
    assert dom.df("pip") == 1 and dom.df("zebra") == 0
    assert dom.store.term_stats() == (3, sum(len(tokenize(t)) for ts in texts.values() for t in ts))
    dom.close()


def test_replacing_or_removing_a_file_touches_only_its_rows_in_the_index(tmp_path: Path) -> None:
    dom = _domain_with(tmp_path, {"a.md": ["alpha beta"], "b.md": ["beta gamma"]})
    assert dom.store.term_stats() == (2, 4)
    new = [NewChunk(Piece("", 1, 1, "delta", "text"), "x", ["delta"], np.full(4, 0.5, np.float32))]
    dom.apply("/root", [("a.md", "a2", 1, new)], [])
    assert _ids(dom, ["alpha"]) == [] and len(_ids(dom, ["beta"])) == 1 and len(_ids(dom, ["delta"])) == 1
    assert dom.store.term_stats() == (2, 3)  # delta; beta gamma
    dom.apply("/root", [], ["b.md"])  # the chunks go by ON DELETE CASCADE; the counts still follow
    assert _ids(dom, ["beta"]) == [] == _ids(dom, ["gamma"]) and dom.store.term_stats() == (1, 1)
    assert [c.text for c in dom.chunks(_ids(dom, ["delta"])).values()] == ["delta"]
    dom.close()
    # reopened: the index is on disk, nothing is rebuilt
    again = Domain.open("d", tmp_path / "d")
    assert not again.lexical_rebuilt and [c.text for c in again.chunks(_ids(again, ["delta"])).values()] == ["delta"]
    again.close()


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


def test_bm25_rescoring_counts_whole_terms_as_a_counter_would() -> None:
    import math
    import random
    from collections import Counter

    from studio_nb.services.knowledge.bm25 import B, K1, score, term_weights

    random.seed(1)
    vocab = [f"w{i}" for i in range(40)] + ["知识", "知识库", "max_tokens", "1.2", "a", "w1w1", "a.b", "a+b"]
    cands = [(i, " ".join(random.choice(vocab) for _ in range(random.randint(0, 60)))) for i in range(60)]
    query = ["w1", "w1", "知识", "a", "1.2", "zz", "a.b", "a+b"]
    idf = term_weights(query, [(100, {t: 1 + i for i, t in enumerate(sorted(set(query)))})])
    assert all(w > 0 for w in idf.values()) and idf["w1"] == pytest.approx(math.log(1 + (100 - 5 + 0.5) / 5.5))

    def by_counter(text: str) -> float:
        terms = text.split(" ") if text else []
        tf, norm = Counter(terms), K1 * (1 - B + B * len(terms) / 30)
        return sum(idf[t] * q * tf[t] * (K1 + 1) / (tf[t] + norm) for t, q in Counter(query).items() if tf[t])

    expected = sorted(((i, by_counter(t)) for i, t in cands if by_counter(t) > 0), key=lambda kv: -kv[1])
    got = score(cands, query, idf, 30)
    assert [i for i, _ in got] == [i for i, _ in expected]
    assert all(s == pytest.approx(e) for (_, s), (_, e) in zip(got, expected))
