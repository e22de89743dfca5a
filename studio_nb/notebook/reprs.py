"""Rich notebook displays: operators as HTML cards, search results as HTML tables.

These are front-end concerns, so they live here and not in the kernel or services:
``register_formatters(ip)`` (called by ``%load_ext studio_nb``) tells IPython to show any
``Operator`` with ``operator_html``, without the kernel importing anything from Jupyter.
Pipelines already draw themselves (SVG) and a ``Response`` renders as Markdown.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

_STYLE = (
    "<style>.studio-card{font-family:var(--jp-ui-font-family,sans-serif);font-size:13px}"
    ".studio-card table{border-collapse:collapse;margin:2px 0 8px}"
    ".studio-card td,.studio-card th{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top}"
    ".studio-card .ok{color:#2a7a2a}.studio-card .err{color:#b00020}</style>"
)


def _short(value: Any, limit: int = 120) -> str:
    """A one-line summary of a message for a table cell (type and a clipped repr)."""
    text = value if isinstance(value, str) else repr(value)
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def _kv_rows(data: dict[str, Any]) -> str:
    return "".join(
        f"<tr><th>{escape(str(k))}</th><td><code>{escape(_short(json.dumps(v, default=repr)))}</code></td></tr>"
        for k, v in data.items()
    )


def operator_html(op: Any) -> str:
    """An operator as an HTML card: sockets, config, policy, and its recent runs (``op.last``)."""
    from studio_nb.kernel.typing_utils import type_name

    s = op.sockets
    kind = "stream" if s.streaming else s.kind
    parts = [
        _STYLE,
        "<div class='studio-card'>",
        f"<b>{escape(type(op).__name__)}</b> <code>{escape(op.name)}</code>",
        f" <small>({kind}{', warm' if op.is_warm else ''})</small>",
        "<table>",
        f"<tr><th>in</th><td><code>{escape(s.input_name)}: {escape(type_name(s.input_type))}</code></td></tr>",
        f"<tr><th>out</th><td><code>{escape(type_name(s.output_type))}</code></td></tr>",
        "</table>",
    ]
    if op.config:
        parts += ["<b>config</b><table>", _kv_rows(op.config), "</table>"]
    policy = op.policy.to_dict()
    parts += [
        "<b>policy</b> ",
        "<small>default</small><br>" if not policy else f"<table>{_kv_rows(policy)}</table>",
    ]
    runs = list(op.last)
    if runs:
        rows = []
        for r in reversed(runs):
            status = (
                "<span class='ok'>ok</span>"
                if r.ok
                else f"<span class='err'>{escape(type(r.error).__name__)}</span>"
            )
            out = _short(r.output) if r.ok else _short(str(r.error))
            stamp = time.strftime("%H:%M:%S", time.localtime(r.started_at)) if r.started_at else ""
            rows.append(
                f"<tr><td>{stamp}</td><td>{status}</td><td style='text-align:right'>{r.duration_ms:.1f} ms</td>"
                f"<td><code>{escape(_short(r.input))}</code></td><td><code>{escape(out)}</code></td></tr>"
            )
        parts += [
            f"<b>last runs</b> <small>({len(runs)} of at most {op.last.maxlen})</small>",
            "<table><tr><th>at</th><th>status</th><th>took</th><th>input</th><th>output</th></tr>",
            *rows,
            "</table>",
        ]
    else:
        parts.append("<small>not run yet</small>")
    parts.append("</div>")
    return "".join(parts)


def _score(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


class SearchResults(list):
    """A list of ``SearchHit`` that shows itself as a table (rank, scores, source, text).

    ``SearchResults(pipe.search(q, mode="dense"), query=q, mode="dense")``; it is still a
    plain list for code (``results[0].chunk.text``).
    """

    def __init__(self, hits: Iterable[Any] = (), query: str = "", mode: str = "") -> None:
        super().__init__(hits)
        self.query = query
        self.mode = mode

    def title(self) -> str:
        bits = [f"{len(self)} hit(s)"]
        if self.mode:
            bits.append(self.mode)
        if self.query:
            bits.append(f"for {self.query!r}")
        return " ".join(bits)

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{i}</td><td>{_score(h.score)}</td><td>{_score(h.dense_score)}</td>"
            f"<td>{_score(h.lexical_score)}</td><td><code>{escape(h.citation.titled)}</code></td>"
            f"<td>{escape(_short(h.chunk.text, 160))}</td></tr>"
            for i, h in enumerate(self, 1)
        )
        return (
            f"{_STYLE}<div class='studio-card'><b>{escape(self.title())}</b><table>"
            "<tr><th>#</th><th>score</th><th>dense</th><th>lexical</th><th>source</th><th>text</th></tr>"
            f"{rows}</table></div>"
        )

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.title())
        for i, h in enumerate(self, 1):
            p.break_()
            p.text(f"{i:>2}. {h.score:.3f}  {h.citation.titled}")


class SearchComparison:
    """The same query searched in several modes, shown as columns side by side."""

    def __init__(self, results: dict[str, SearchResults]) -> None:
        self.results = results

    def __getitem__(self, mode: str) -> SearchResults:
        return self.results[mode]

    def _repr_html_(self) -> str:
        cols = "".join(
            f"<div style='flex:1;min-width:0'><b>{escape(mode)}</b><ol>"
            + "".join(f"<li><code>{escape(h.citation.titled)}</code> <small>{_score(h.score)}</small></li>" for h in hits)
            + "</ol></div>"
            for mode, hits in self.results.items()
        )
        return f"{_STYLE}<div class='studio-card' style='display:flex;gap:12px'>{cols}</div>"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        first = True
        for mode, hits in self.results.items():
            if not first:
                p.break_()
            first = False
            p.text(f"{mode}:")
            for i, h in enumerate(hits, 1):
                p.break_()
                p.text(f"  {i}. {h.citation.titled}")


def compare_search(
    pipe: Any,
    query: str,
    modes: Sequence[str] = ("dense", "lexical", "hybrid"),
    k: int = 5,
    domains: Sequence[str] | None = None,
) -> SearchComparison:
    """Run ``pipe.search`` once per mode and return the results side by side."""
    return SearchComparison(
        {
            m: SearchResults(pipe.search(query, domains=domains, k=k, mode=m), query=query, mode=m)
            for m in modes
        }
    )


_OPERATOR = ("studio_nb.kernel.operator", "Operator")


def register_formatters(ip: Any) -> None:
    """Show operators as HTML cards in this shell (by name: does not import the kernel)."""
    ip.display_formatter.formatters["text/html"].for_type_by_name(*_OPERATOR, operator_html)


def unregister_formatters(ip: Any) -> None:
    """Undo ``register_formatters`` (``pop`` by name also finds the resolved type)."""
    ip.display_formatter.formatters["text/html"].pop(".".join(_OPERATOR), None)
