"""Offline drawings of a pipeline: a layered layout, SVG, Mermaid text, and graph JSON.

Haystack renders Mermaid through a web service; we lay the graph out ourselves (layers
by longest path from the source, feedback edges drawn on the side) so drawing works on
an air-gapped laptop. The same layout feeds the Studio page's live graph.
"""

from __future__ import annotations

from html import escape
from typing import Any

from studio_nb.kernel.typing_utils import type_name

NODE_H = 40
GAP_X = 24
GAP_Y = 44
PAD = 12
CHAR_W = 7.2
MARGIN = 20


def _label_width(*texts: str) -> float:
    return max(110.0, max(len(t) for t in texts) * CHAR_W + 2 * PAD)


def _layers(p: Any) -> list[list[Any]]:
    top = [n for n in p.nodes.values() if n.top_level]
    depth: dict[str, int] = {}
    order = {n.name: i for i, n in enumerate(top)}
    if p.source is not None:
        depth[p.source.name] = 0
        changed = True
        for _ in range(len(top) + 1):  # longest path on a DAG by relaxation
            if not changed:
                break
            changed = False
            for n in top:
                if n.name not in depth:
                    continue
                for e in n.out_edges:
                    if not e.feedback and depth.get(e.dst.name, -1) < depth[n.name] + 1:
                        depth[e.dst.name] = depth[n.name] + 1
                        changed = True
    for n in top:
        depth.setdefault(n.name, 0)
    layers: list[list[Any]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for n in sorted(top, key=lambda n: order[n.name]):
        layers[depth[n.name]].append(n)
    return layers


def layout(p: Any) -> dict[str, dict[str, float]]:
    """Boxes ``{name: {x, y, w, h}}`` for every node, group members included."""
    boxes: dict[str, dict[str, float]] = {}
    sizes: dict[str, tuple[float, float]] = {}
    for n in p.nodes.values():
        if n.is_group:
            inner_w = sum(_label_width(m.name, type(m.op).__name__) for m in n.members) + GAP_X * (len(n.members) - 1)
            h = NODE_H + 2 * PAD + 18 + (NODE_H + PAD if n.join else 0)
            sizes[n.name] = (max(inner_w + 2 * PAD, 160.0), h)
        elif n.top_level:
            sizes[n.name] = (_label_width(n.name, type(n.op).__name__), NODE_H)
    layers = _layers(p)
    widths = [sum(sizes[n.name][0] for n in layer) + GAP_X * (len(layer) - 1) for layer in layers]
    total_w = max(widths, default=0)
    y = MARGIN
    for layer, width in zip(layers, widths):
        x = MARGIN + (total_w - width) / 2
        row_h = max(sizes[n.name][1] for n in layer)
        for n in layer:
            w, h = sizes[n.name]
            boxes[n.name] = {"x": x, "y": y, "w": w, "h": h}
            if n.is_group:
                mx = x + PAD
                for m in n.members:
                    mw = _label_width(m.name, type(m.op).__name__)
                    boxes[m.name] = {"x": mx, "y": y + PAD + 18, "w": mw, "h": NODE_H}
                    mx += mw + GAP_X
                if n.join is not None:
                    jw = _label_width(n.join.name, type(n.join.op).__name__)
                    boxes[n.join.name] = {"x": x + (w - jw) / 2, "y": y + PAD + 18 + NODE_H + PAD, "w": jw, "h": NODE_H}
            x += w + GAP_X
        y += row_h + GAP_Y
    return boxes


def graph_dict(p: Any) -> dict[str, Any]:
    """JSON-able graph with layout and live stats (the REST endpoint and web page use it)."""
    boxes = layout(p)
    engine_stats = getattr(p.engine, "stats", {})
    nodes = []
    for n in p.nodes.values():
        entry = {
            "name": n.name,
            "kind": n.kind,
            "group": n.group,
            "operator": type(n.op).__name__,
            "input_type": type_name(n.input_type),
            "output_type": type_name(n.output_type),
            "enabled": n.enabled,
            "source": n is p.source,
            "box": {k: round(v, 1) for k, v in boxes.get(n.name, {}).items()},
        }
        if n.kind != "group":
            entry["policy"] = n.policy.to_dict()
            entry["streaming"] = n.op.streaming
        stats = engine_stats.get(n.name)
        entry["stats"] = stats.to_dict() if stats is not None else None
        nodes.append(entry)
    edges = [
        {"from": e.src.name, "to": e.dst.name, "feedback": e.feedback, "max_loops": e.max_loops} for e in p.edges
    ]
    width = max((b["x"] + b["w"] for b in boxes.values()), default=0) + MARGIN + 60
    height = max((b["y"] + b["h"] for b in boxes.values()), default=0) + MARGIN
    return {"name": p.name, "nodes": nodes, "edges": edges, "width": width, "height": height}


def to_svg(p: Any) -> str:
    g = graph_dict(p)
    boxes = {n["name"]: n["box"] for n in g["nodes"]}
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{g["width"]:.0f}" height="{g["height"]:.0f}" '
        f'viewBox="0 0 {g["width"]:.0f} {g["height"]:.0f}" font-family="sans-serif" font-size="12">',
        f"<title>{escape(p.name)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>',
    ]
    for n in g["nodes"]:  # groups first so members draw on top
        if n["kind"] == "group":
            b = n["box"]
            out.append(
                f'<rect x="{b["x"]:.1f}" y="{b["y"]:.1f}" width="{b["w"]:.1f}" height="{b["h"]:.1f}" rx="8" '
                f'fill="#f4f7fb" stroke="#8aa" stroke-dasharray="4 3"/>'
                f'<text x="{b["x"] + PAD:.1f}" y="{b["y"] + 16:.1f}" fill="#467">{escape(n["name"])} (parallel)</text>'
            )
    for e in g["edges"]:
        a, b = boxes[e["from"]], boxes[e["to"]]
        if e["feedback"]:
            x1, y1 = a["x"] + a["w"], a["y"] + a["h"] / 2
            x2, y2 = b["x"] + b["w"], b["y"] + b["h"] / 2
            bend = max(x1, x2) + 50
            out.append(
                f'<path d="M {x1:.1f} {y1:.1f} C {bend:.1f} {y1:.1f}, {bend:.1f} {y2:.1f}, {x2:.1f} {y2:.1f}" '
                f'fill="none" stroke="#b55" stroke-dasharray="5 4" marker-end="url(#arrow)"/>'
                f'<text x="{bend - 8:.1f}" y="{(y1 + y2) / 2:.1f}" fill="#b55" text-anchor="end">'
                f"≤{e['max_loops']}</text>"
            )
        else:
            x1, y1 = a["x"] + a["w"] / 2, a["y"] + a["h"]
            x2, y2 = b["x"] + b["w"] / 2, b["y"]
            out.append(
                f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="#555" marker-end="url(#arrow)"/>'
            )
    for n in g["nodes"]:
        if n["kind"] == "group":
            continue
        b = n["box"]
        fill = "#ffffff" if n["enabled"] else "#eeeeee"
        stroke = "#2a6" if n["source"] else "#456"
        dash = "" if n["enabled"] else ' stroke-dasharray="3 3"'
        out.append(
            f'<g class="node" data-name="{escape(n["name"])}">'
            f'<rect x="{b["x"]:.1f}" y="{b["y"]:.1f}" width="{b["w"]:.1f}" height="{b["h"]:.1f}" rx="6" '
            f'fill="{fill}" stroke="{stroke}"{dash}/>'
            f'<text x="{b["x"] + b["w"] / 2:.1f}" y="{b["y"] + 17:.1f}" text-anchor="middle" font-weight="bold">'
            f"{escape(n['name'])}</text>"
            f'<text x="{b["x"] + b["w"] / 2:.1f}" y="{b["y"] + 32:.1f}" text-anchor="middle" fill="#678" '
            f'font-size="10">{escape(n["operator"])}{" (off)" if not n["enabled"] else ""}</text></g>'
        )
    out.append("</svg>")
    return "".join(out)


def _mermaid_id(name: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name)


def to_mermaid(p: Any) -> str:
    lines = ["flowchart TD"]
    for n in p.nodes.values():
        if n.is_group:
            lines.append(f'  subgraph {_mermaid_id(n.name)} ["{n.name} (parallel)"]')
            for m in n.members + ([n.join] if n.join else []):
                lines.append(f'    {_mermaid_id(m.name)}["{m.name}<br/><small>{type(m.op).__name__}</small>"]')
            if n.join:
                for m in n.members:
                    lines.append(f"    {_mermaid_id(m.name)} --> {_mermaid_id(n.join.name)}")
            lines.append("  end")
        elif n.top_level:
            lines.append(f'  {_mermaid_id(n.name)}["{n.name}<br/><small>{type(n.op).__name__}</small>"]')
    for e in p.edges:
        src, dst = _mermaid_id(e.src.name), _mermaid_id(e.dst.name)
        if e.feedback:
            lines.append(f'  {src} -. "feedback ≤{e.max_loops}" .-> {dst}')
        else:
            lines.append(f"  {src} -->|{type_name(e.dst.input_type)}| {dst}")
    return "\n".join(lines)


class Drawing:
    """What ``pipeline.draw()`` returns: shows itself as SVG in a notebook."""

    def __init__(self, p: Any) -> None:
        self.svg = to_svg(p)
        self.mermaid = to_mermaid(p)

    def _repr_svg_(self) -> str:
        return self.svg

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"image/svg+xml": self.svg, "text/plain": self.mermaid}

    def save(self, path: str) -> None:
        """Write ``.svg`` or ``.mmd`` (Mermaid) depending on the suffix."""
        text = self.mermaid if str(path).endswith((".mmd", ".mermaid")) else self.svg
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)

    def __str__(self) -> str:
        return self.mermaid
