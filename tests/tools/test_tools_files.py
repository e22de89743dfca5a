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


# ---------------------------------------------------------------- issue #11: F3, F5, F8
def test_hard_link_is_refused_even_inside(ws, tmp_path):
    """F5: a hard link to a file outside looks like an ordinary file; any st_nlink > 1 is refused."""
    os.link(tmp_path / "secret.txt", ws.root / "hard.txt")
    with pytest.raises(PathEscapeError, match="hard links"):
        ws.read_file("hard.txt")
    os.link(ws.root / "docs" / "a.md", ws.root / "twin.md")  # both names inside: refused too (documented)
    with pytest.raises(PathEscapeError, match="2 hard links"):
        ws.read_file("docs/a.md")


def test_links_inside_are_followed_and_links_out_refused_at_any_depth(ws, tmp_path):
    os.symlink(ws.root / "docs", ws.root / "abs_docs")              # absolute, inside
    os.symlink("../../docs/deep", ws.root / "docs" / "deep" / "up")  # relative, inside, through ..
    assert ws.read_file("abs_docs/deep/c.py") == {**ws.read_file("docs/deep/c.py")}
    assert ws.read_file("docs/deep/up/c.py")["path"] == "docs/deep/c.py"
    os.symlink("../../..", ws.root / "docs" / "deep" / "climb")      # climbs above the workspace
    with pytest.raises(PathEscapeError):
        ws.read_file("docs/deep/climb/secret.txt")
    with pytest.raises(PathEscapeError):
        ws.read_file("docs/../../secret.txt")


def _exchange(a, b) -> None:
    """Swap two paths atomically (renameat2 RENAME_EXCHANGE), as an attacker would."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.renameat2(-100, os.fsencode(a), -100, os.fsencode(b), 2) != 0:
        raise OSError(ctypes.get_errno(), "renameat2")


@pytest.fixture
def swappable(ws, tmp_path):
    """ws/sub is a real folder with ok.txt; ws/.other is a link to an outside folder
    holding an ok.txt with a secret. Exchanging them turns sub into the link."""
    (ws.root / "sub").mkdir()
    (ws.root / "sub" / "ok.txt").write_text("fine", encoding="utf-8")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "ok.txt").write_text("top secret", encoding="utf-8")
    os.symlink(tmp_path / "out", ws.root / ".other")
    return ws.root / "sub", ws.root / ".other"


def test_a_folder_swapped_for_a_link_between_check_and_open_is_refused(ws, swappable, monkeypatch):
    """F5, deterministically: the swap lands exactly after each component was checked."""
    from studio_nb.services import confined

    real_os = confined.os

    class SwapAfterStat:
        def __getattr__(self, name):
            return getattr(real_os, name)

        def stat(self, name, *a, **kw):
            st = real_os.stat(name, *a, **kw)
            if name == "sub":
                _exchange(*swappable)  # now sub -> outside, right after it looked like a folder
            return st

    monkeypatch.setattr(confined, "os", SwapAfterStat())
    with pytest.raises(ToolError, match="changed while it was opened"):
        ws.read_file("sub/ok.txt")


def test_a_link_swapped_during_3000_reads_never_leaks(ws, swappable, tmp_path):
    """F5 under load: another process exchanges ws/sub (a folder) with a link out of the
    workspace as fast as it can while 3,000 reads of sub/ok.txt run."""
    import subprocess
    import sys

    stop = tmp_path / "stop"
    flipper = subprocess.Popen([sys.executable, "-c", f"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
a, b, stop = {str(swappable[0])!r}, {str(swappable[1])!r}, {str(stop)!r}
n = 0
while not os.path.exists(stop):
    libc.renameat2(-100, a.encode(), -100, b.encode(), 2); n += 1
    if n == 1: print("flipping", flush=True)
print(n, flush=True)
"""], stdout=subprocess.PIPE, text=True)
    assert flipper.stdout.readline().strip() == "flipping"  # the swaps have started
    outcomes = {"fine": 0, "refused": 0}
    try:
        for _ in range(3000):
            try:
                text = ws.read_file("sub/ok.txt")["text"]
            except ToolError:
                outcomes["refused"] += 1
                continue
            assert text == "fine", "a read followed the swapped link out of the workspace"
            outcomes["fine"] += 1
    finally:
        stop.touch()
        flips = int(flipper.stdout.readline())
        flipper.wait(30)
    print("swap race over 3000 reads:", outcomes, "exchanges:", flips)
    assert sum(outcomes.values()) == 3000 and flips > 0


def test_symlink_loops_are_reported_not_fatal(ws):
    """F8: one loop must not make list_files fail for the whole folder."""
    os.symlink("loop_b", ws.root / "loop_a")
    os.symlink("loop_a", ws.root / "loop_b")
    os.symlink(".", ws.root / "docs" / "self")  # a folder that contains itself
    top = ws.list_files()
    by_path = {e["path"]: e for e in top["entries"]}
    assert by_path["README.md"]["type"] == "file" and by_path["docs"]["type"] == "dir"
    assert "symlink" in by_path["loop_a"]["problem"] and {s["path"] for s in top["skipped"]} >= {"loop_a", "loop_b"}
    deep = ws.list_files(".", recursive=True)
    assert "docs/deep/c.py" in {e["path"] for e in deep["entries"]}
    assert not any(e["path"].startswith("docs/self/") for e in deep["entries"])  # links are never walked
    with pytest.raises(ToolError, match="symlinks"):
        ws.read_file("loop_a")


def test_per_user_workspace(tmp_path):
    for user in ("alice", "bob"):
        (tmp_path / "home" / user).mkdir(parents=True)
        (tmp_path / "home" / user / "mine.txt").write_text(f"{user}'s", encoding="utf-8")
    ws = Workspace(str(tmp_path / "home" / "{user}"))
    assert ws.read_file("mine.txt", user="alice")["text"] == "alice's"
    assert ws.read_file("mine.txt", user="bob")["text"] == "bob's"
    with pytest.raises(PathEscapeError):
        ws.read_file("../alice/mine.txt", user="bob")
    with pytest.raises(PathEscapeError):
        ws.read_file(str(tmp_path / "home" / "alice" / "mine.txt"), user="bob")
    for bad in (None, "..", "a/b"):
        with pytest.raises(ToolError, match="no workspace for user"):
            ws.read_file("mine.txt", user=bad)
    with pytest.raises(ToolError, match="has no workspace folder"):
        ws.list_files(user="carol")
