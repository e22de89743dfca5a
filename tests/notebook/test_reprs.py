"""Rich displays: operator cards, search tables, and the extension's load cost."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from studio_nb.kernel.testing import Upper
from studio_nb.notebook.reprs import SearchResults, compare_search, operator_html


def test_operator_card_shows_sockets_config_policy_and_runs() -> None:
    op = Upper(name="shout").with_policy(timeout_ms=250.0)
    assert "not run yet" in operator_html(op)
    op("hello <b>")
    html = operator_html(op)
    assert "<b>Upper</b> <code>shout</code>" in html
    assert "<code>msg: str</code>" in html
    assert "timeout_ms" in html and "250.0" in html
    assert "last runs" in html and "HELLO &lt;B&gt;" in html  # outputs are escaped
    assert "<span class='ok'>ok</span>" in html


def test_failed_run_is_shown_as_an_error() -> None:
    op = Upper()
    with pytest.raises(AttributeError):
        op(42)  # type: ignore[arg-type]
    assert "<span class='err'>AttributeError</span>" in operator_html(op)


def test_extension_registers_the_operator_card(shell: Any) -> None:
    from studio_nb.notebook import unload_ipython_extension

    op = Upper()
    data, _ = shell.display_formatter.format(op)
    assert data["text/html"] == operator_html(op) and data["text/plain"] == repr(op)
    unload_ipython_extension(shell)
    try:
        data, _ = shell.display_formatter.format(op)
        assert "text/html" not in data
    finally:
        shell.run_line_magic("reload_ext", "studio_nb.notebook")
    assert "text/html" in shell.display_formatter.format(op)[0]


@pytest.mark.slow
def test_real_studio_operator_card(studio_pipe: Any) -> None:
    router = studio_pipe["intent_router"]
    from studio_nb.messages import UserMessage

    router(UserMessage("what is a ParallelGroup?"))
    html = operator_html(router)
    assert "IntentRouterOp" in html and "RoutedMessage" in html and "last runs" in html


@pytest.mark.slow
def test_search_results_table(studio_pipe: Any) -> None:
    hits = SearchResults(
        studio_pipe.search("ParallelGroup branches", k=3), query="ParallelGroup branches", mode="hybrid"
    )
    assert len(hits) == 3 and isinstance(hits, list)
    html = hits._repr_html_()
    assert html.count("<tr><td>") == 3 and "3 hit(s) hybrid for &#x27;ParallelGroup branches&#x27;" in html
    for h in hits:
        assert h.ref.split(" § ")[0] in html
    from IPython.lib.pretty import pretty

    text = pretty(hits)
    assert (
        text.splitlines()[0] == "3 hit(s) hybrid for 'ParallelGroup branches'" and len(text.splitlines()) == 4
    )

    side = compare_search(studio_pipe, "ParallelGroup branches", k=2)
    assert list(side.results) == ["dense", "lexical", "hybrid"]
    assert all(len(r) <= 2 for r in side.results.values())
    assert side._repr_html_().count("<ol>") == 3


LOAD_PROBE = """
import json, sys, time
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
t0 = time.perf_counter()
ip.run_line_magic("load_ext", "studio_nb")
took = time.perf_counter() - t0
heavy = ["torch", "llama_cpp", "sentence_transformers", "hnswlib", "ipywidgets", "studio_nb.studio",
         "studio_nb.services.knowledge", "studio_nb.operators"]
print(json.dumps({"seconds": took, "loaded": [m for m in heavy if m in sys.modules],
                  "magic": "sage_chat" in ip.magics_manager.magics["line"]}))
"""


def test_load_ext_studio_nb_is_cheap() -> None:
    """``%load_ext studio_nb`` in a fresh interpreter registers the magic and loads no model code."""
    out = subprocess.run(
        [sys.executable, "-c", LOAD_PROBE], check=False, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["magic"], "studio_nb/__init__.py must expose load_ipython_extension"
    assert report["loaded"] == []
