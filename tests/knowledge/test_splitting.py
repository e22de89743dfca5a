"""Splitters on real corpus files and on small crafted ones (no model needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio_nb.services.knowledge.split_text import SplitConfig
from studio_nb.services.knowledge.splitters import SkipFile, split_file

CFG = SplitConfig()


def lines_of(data: bytes) -> list[str]:
    return data.decode("utf-8-sig").replace("\r\n", "\n").split("\n")


def test_every_corpus_chunk_is_exactly_its_line_range(shared_data: Path) -> None:
    files = sorted(p for p in shared_data.rglob("*") if p.suffix in {".md", ".py"})
    assert len(files) > 200
    total = 0
    for f in files:
        data = f.read_bytes()
        lines = lines_of(data)
        for piece in split_file(f, data, CFG):
            total += 1
            assert 1 <= piece.start_line <= piece.end_line <= len(lines), (f, piece)
            assert piece.text == "\n".join(lines[piece.start_line - 1 : piece.end_line]), (f, piece.start_line)
            assert len(piece.text) <= CFG.max_chars
    assert total > 2000


def test_markdown_heading_paths_on_real_file(shared_data: Path) -> None:
    f = shared_data / "sage_docs/getting-started/installation.md"
    pieces = split_file(f, f.read_bytes(), CFG)
    headings = [p.heading for p in pieces]
    assert "SAGE 安装指南 > D. 构建 C++ 扩展（可选，推荐） > 系统依赖" in headings
    assert all(h.startswith("SAGE 安装指南") for h in headings)
    # the section's own heading line is inside its chunk
    sys_dep = pieces[headings.index("SAGE 安装指南 > D. 构建 C++ 扩展（可选，推荐） > 系统依赖")]
    assert "系统依赖" in sys_dep.text.splitlines()[0]


def test_markdown_long_section_split_with_overlap_and_fenced_hash_ignored(tmp_path: Path) -> None:
    body = "\n".join(f"line {i} " + "word " * 20 for i in range(60))
    text = f"# Guide\n\nintro text that is long enough to stand alone {'x' * 300}\n\n## Install\n\n```bash\n# not a heading\n```\n{body}\n"
    f = tmp_path / "g.md"
    f.write_text(text)
    pieces = split_file(f, f.read_bytes(), CFG)
    assert pieces[0].heading == "Guide"
    install = [p for p in pieces if p.heading == "Guide > Install"]
    assert len(install) >= 3, "a long section is cut into several windows"
    assert not any("not a heading" in p.heading for p in pieces)
    for a, b in zip(install, install[1:]):
        assert b.start_line <= a.end_line, "consecutive windows overlap"
        assert b.start_line > a.start_line


def test_python_split_by_definition_without_executing(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    src = (
        '"""Module doc."""\nimport os\n\n'
        f"open({str(marker)!r}, 'w').write('x')\n\n"
        "# helper comment\n@staticmethod\ndef helper(a):\n    return a\n\n"
        "class Thing:\n    '''A thing.'''\n    def run(self):\n        return 1\n\n"
        "if __name__ == '__main__':\n    raise SystemExit(helper(1))\n"
    )
    f = tmp_path / "mod.py"
    f.write_text(src)
    pieces = split_file(f, f.read_bytes(), CFG)
    assert not marker.exists(), "ingesting must never execute the code"
    assert [p.heading for p in pieces] == ["module", "def helper", "class Thing", "module"]
    helper = pieces[1]
    assert helper.text.startswith("# helper comment\n@staticmethod\ndef helper")
    assert pieces[0].text.startswith('"""Module doc."""')
    assert "__main__" in pieces[3].text


def test_large_python_class_is_cut_per_method(shared_data: Path) -> None:
    f = shared_data / "sage_examples/L3-libs/rag/simple_rag.py"
    headings = [p.heading for p in split_file(f, f.read_bytes(), CFG)]
    assert "class LocalSinkScheduler > def make_decision" in headings
    assert "def pipeline_run" in headings


def test_python_syntax_error_falls_back_to_windows(tmp_path: Path) -> None:
    f = tmp_path / "broken.py"
    f.write_text("def broken(:\n    pass\n")
    pieces = split_file(f, f.read_bytes(), CFG)
    assert pieces and pieces[0].text.startswith("def broken(")


def test_notebook_cells_with_markdown_headings(tmp_path: Path) -> None:
    nb = {
        "cells": [
            {"cell_type": "markdown", "source": ["# Loading data\n", "We read a CSV."]},
            {"cell_type": "code", "source": "import pandas as pd\ndf = pd.read_csv('x.csv')", "outputs": [{"text": "HUGE"}]},
            {"cell_type": "markdown", "source": "## Plotting"},
            {"cell_type": "code", "source": "df.plot()"},
        ],
        "nbformat": 4,
    }
    f = tmp_path / "nb.ipynb"
    f.write_text(json.dumps(nb))
    pieces = split_file(f, f.read_bytes(), CFG)
    assert [(p.heading, p.start_line, p.end_line) for p in pieces] == [("Loading data", 1, 2), ("Plotting", 3, 4)]
    assert "read_csv" in pieces[0].text and "HUGE" not in pieces[0].text
    assert all(p.kind == "notebook" for p in pieces)


def test_json_and_yaml_by_top_level_key(tmp_path: Path) -> None:
    big = {"retriever": {"top_k": 5, "notes": "r" * 400}, "generator": {"model": "m", "notes": "g" * 400}, "v": 1}
    j = tmp_path / "cfg.json"
    j.write_text(json.dumps(big, indent=2))
    pieces = split_file(j, j.read_bytes(), CFG)
    assert [p.heading for p in pieces] == ["retriever", "generator"]  # the tiny last key merges into its neighbour
    assert '"top_k": 5' in pieces[0].text and '"v": 1' in pieces[1].text
    y = tmp_path / "cfg.yaml"
    y.write_text("# comment\nretriever:\n  top_k: 5\n  notes: " + "r" * 400 + "\ngenerator:\n  model: m\n  notes: " + "g" * 400 + "\n")
    pieces = split_file(y, y.read_bytes(), CFG)
    assert [p.heading for p in pieces] == ["retriever", "generator"]
    assert pieces[1].start_line == 5 and pieces[1].text.startswith("generator:")


def test_rst_and_txt(tmp_path: Path) -> None:
    r = tmp_path / "doc.rst"
    r.write_text("Title\n=====\n\nIntro " + "a" * 400 + "\n\nUsage\n-----\n\nRun it " + "b" * 400 + "\n")
    assert [p.heading for p in split_file(r, r.read_bytes(), CFG)] == ["Title", "Title > Usage"]
    t = tmp_path / "notes.txt"
    t.write_text("\n\n".join("para " * 50 for _ in range(10)))
    pieces = split_file(t, t.read_bytes(), CFG)
    assert len(pieces) >= 2 and all(p.kind == "text" for p in pieces)


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("bin.md", b"\x89PNG\x00\x00\x01", "binary"),
        ("latin.txt", "caf\xe9 cr\xe8me".encode("latin-1"), "not UTF-8"),
        ("bad.json", b'{"a": ', "cannot parse"),
        ("bad.ipynb", b"[1, 2]", "cannot parse"),
        ("bad.yaml", b"a: [1, 2\n", "cannot parse"),
    ],
)
def test_bad_files_raise_skipfile_with_reason(tmp_path: Path, name: str, data: bytes, reason: str) -> None:
    f = tmp_path / name
    f.write_bytes(data)
    with pytest.raises(SkipFile, match=reason):
        split_file(f, data, CFG)
