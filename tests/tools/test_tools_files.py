"""File tools stay inside their workspace, whatever the path says."""

from __future__ import annotations

import os

import pytest

from studio_nb.errors import PathEscapeError, ToolError
from studio_nb.services.tools.files import Workspace


@pytest.fixture
def ws(tmp_path):
    root = tmp_path / "ws"
    (root / "docs" / "deep").mkdir(parents=True)
    (root / "README.md").write_text("# 标题\nhello\n", encoding="utf-8")
    (root / "docs" / "a.md").write_text("alpha", encoding="utf-8")
    (root / "docs" / "b.py").write_text("print('b')", encoding="utf-8")
    (root / "docs" / "deep" / "c.py").write_text("c", encoding="utf-8")
    (root / "latin1.txt").write_bytes("café naïve".encode("latin-1"))
    (root / "blob.bin").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "secret.txt").write_text("top secret", encoding="utf-8")
    os.symlink(tmp_path / "secret.txt", root / "leak.txt")
    os.symlink(tmp_path, root / "outside_dir")
    os.symlink(root / "docs" / "a.md", root / "inner_link.md")
    return Workspace(root)


@pytest.mark.parametrize("path", [
    "../secret.txt",
    "docs/../../secret.txt",
    "leak.txt",                  # symlink pointing outside
    "outside_dir/secret.txt",    # through a symlinked folder
    "/etc/passwd",               # absolute, outside
    "~/.bashrc",
])
def test_escapes_are_refused(ws, path):
    with pytest.raises(PathEscapeError) as err:
        ws.read_file(path)
    assert err.value.code == "path_escape" and "outside the workspace" in str(err.value)


def test_list_refuses_escapes_too(ws):
    with pytest.raises(PathEscapeError):
        ws.list_files("..")
    with pytest.raises(PathEscapeError):
        ws.list_files("outside_dir")
    with pytest.raises(ToolError, match="bad pattern"):
        ws.list_files(".", pattern="../*")


def test_reads_text_inside(ws):
    out = ws.read_file("README.md")
    assert out == {"path": "README.md", "size": len("# 标题\nhello\n".encode()), "truncated": False,
                   "encoding": "utf-8", "decode_errors": 0, "text": "# 标题\nhello\n"}
    assert ws.read_file(str(ws.root / "docs" / "a.md"))["text"] == "alpha"  # absolute inside is fine
    assert ws.read_file("inner_link.md")["path"] == "docs/a.md"          # symlink inside is fine
    assert ws.read_file("docs/./deep/../a.md")["text"] == "alpha"


def test_caps_and_decode_errors(ws):
    cut = ws.read_file("README.md", max_bytes=4)  # "# " + first byte pair of 标 (3 bytes)
    assert cut["truncated"] and cut["text"] == "# " and cut["decode_errors"] == 0
    bad = ws.read_file("latin1.txt")
    assert bad["decode_errors"] == 2 and bad["text"].startswith("caf\ufffd")
    with pytest.raises(ToolError, match="looks binary"):
        ws.read_file("blob.bin")
    with pytest.raises(ToolError, match="not a regular file"):
        ws.read_file("docs")
    with pytest.raises(ToolError, match="no file 'nope.md'"):
        ws.read_file("nope.md")
    with pytest.raises(ToolError, match="NUL"):
        ws.read_file("a\x00b")


def test_list_files(ws):
    top = ws.list_files()
    kinds = {e["path"]: e["type"] for e in top["entries"]}
    assert kinds["docs"] == "dir" and kinds["README.md"] == "file" and kinds["leak.txt"] == "symlink"
    assert next(e for e in top["entries"] if e["path"] == "leak.txt")["inside_workspace"] is False
    assert "docs/a.md" not in kinds  # not recursive by default
    py = ws.list_files(".", pattern="*.py", recursive=True)
    assert [e["path"] for e in py["entries"]] == ["docs/b.py", "docs/deep/c.py"]
    assert all(not e["path"].startswith("outside_dir/") for e in ws.list_files(recursive=True)["entries"])
    assert ws.list_files("docs", limit=1)["truncated"] is True
