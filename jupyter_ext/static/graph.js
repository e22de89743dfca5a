/* The pipeline graph as this chat's session sees it: nodes with live status and timings,
 * the parallel branches it may switch off, and the server's warm-up progress.
 */

import { $, api, h, notice, state, svg } from "./core.js";
import { selectNode } from "./inspector.js";

export function loadGraph() {  // the graph as this chat's session sees it (its own branch toggles)
  return api("pipeline?session_id=" + encodeURIComponent(state.session))
    .then(function (g) { state.graph = g; drawGraph(g); showWarmUp(g.runtime); })
    .catch(function (e) { notice("pipeline: " + e.message); });
}

// while the server loads its models, say how far it got (the first answer waits for it)
export function showWarmUp(runtime) {
  var box = $("warm-up");
  if (!box || !runtime) return;
  if (runtime.status !== "warming" && runtime.status !== "idle") {
    box.hidden = runtime.status !== "failed";
    if (runtime.status === "failed") box.textContent = "warm-up failed: " + (runtime.error || {}).message;
    return;
  }
  var p = runtime.warm_up_progress;
  box.hidden = false;
  box.textContent = "warming up: " + (p ? p.step + " loaded (" + p.done + "/" + p.total + ", " +
                                            p.elapsed_s + " s)" : "starting…");
  setTimeout(loadGraph, 1000);
}

export function drawGraph(g) {
  var root = svg("svg", { width: g.width, height: g.height, viewBox: "0 0 " + g.width + " " + g.height,
                          class: "pipeline" });
  var defs = svg("defs");
  var marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7,
                               markerHeight: 7, orient: "auto-start-reverse" });
  marker.appendChild(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#555" }));
  defs.appendChild(marker);
  root.appendChild(defs);
  var boxes = {};
  g.nodes.forEach(function (n) { boxes[n.name] = n.box; });
  g.nodes.filter(function (n) { return n.kind === "group"; }).forEach(function (n) {
    var b = n.box;
    root.appendChild(svg("rect", { x: b.x, y: b.y, width: b.w, height: b.h, rx: 8, class: "group" }));
    root.appendChild(svg("text", { x: b.x + 12, y: b.y + 16, class: "group-label" }, n.name + " (parallel)"));
  });
  var line = function (a, b, cls) {
    root.appendChild(svg("line", { x1: a.x + a.w / 2, y1: a.y + a.h, x2: b.x + b.w / 2, y2: b.y, class: cls,
                                   "marker-end": "url(#arrow)" }));
  };
  g.edges.forEach(function (e) {
    var a = boxes[e.from], b = boxes[e.to];
    if (!a || !b) return;
    if (e.feedback) {
      var x1 = a.x + a.w, y1 = a.y + a.h / 2, x2 = b.x + b.w, y2 = b.y + b.h / 2, bend = Math.max(x1, x2) + 50;
      root.appendChild(svg("path", { d: "M " + x1 + " " + y1 + " C " + bend + " " + y1 + ", " + bend + " " + y2 +
                                        ", " + x2 + " " + y2, class: "edge feedback", "marker-end": "url(#arrow)" }));
      root.appendChild(svg("text", { x: bend - 8, y: (y1 + y2) / 2, class: "feedback-label",
                                     "text-anchor": "end" }, "≤" + e.max_loops));
    } else {
      line(a, b, "edge");
    }
  });
  var joins = {};
  g.nodes.forEach(function (n) { if (n.kind === "join") joins[n.group] = n; });
  g.nodes.forEach(function (n) {
    if (n.group && n.kind !== "join" && joins[n.group]) line(n.box, joins[n.group].box, "edge inner");
  });
  var previous = state.nodes;  // keep this turn's highlights across a redraw with fresh stats
  state.nodes = {};
  g.nodes.filter(function (n) { return n.kind !== "group"; }).forEach(function (n) {
    var b = n.box;
    var grp = svg("g", { class: "node", "data-name": n.name, "data-enabled": n.enabled });
    var rect = svg("rect", { x: b.x, y: b.y, width: b.w, height: b.h, rx: 6 });
    grp.appendChild(rect);
    grp.appendChild(svg("text", { x: b.x + b.w / 2, y: b.y + 16, class: "name", "text-anchor": "middle" }, n.name));
    var stats = n.stats && n.stats.runs ? statsLabel(n.stats) : n.operator + (n.enabled ? "" : " (off)");
    var time = svg("text", { x: b.x + b.w / 2, y: b.y + 31, class: "time", "text-anchor": "middle" }, stats);
    grp.appendChild(time);
    var title = svg("title", {}, n.operator + ": " + n.input_type + " → " + n.output_type);
    grp.appendChild(title);
    root.appendChild(grp);
    grp.addEventListener("click", function () { selectNode(n.name); });
    if (n.name === state.selected) grp.setAttribute("data-selected", "true");
    state.nodes[n.name] = { g: grp, time: time };
    var old = previous[n.name];
    if (old && old.g.getAttribute("data-status")) {
      grp.setAttribute("data-status", old.g.getAttribute("data-status"));
      time.textContent = old.time.textContent;
    }
  });
  $("graph").replaceChildren(root);
  drawToggles(g);
}

export function statsLabel(s) {
  var ms = s.mean_ms !== undefined ? s.mean_ms : (s.total_ms && s.runs ? s.total_ms / s.runs : null);
  return s.runs + " runs" + (ms !== null && ms !== undefined ? " · " + Number(ms).toFixed(1) + " ms avg" : "");
}

export function drawToggles(g) {
  var box = $("toggles");
  box.replaceChildren();
  g.nodes.filter(function (n) { return n.group && n.kind !== "join" && n.kind !== "group"; }).forEach(function (n) {
    var label = h("label", "toggle");
    var cb = document.createElement("input");
    cb.type = "checkbox";
    cb.checked = n.enabled;
    cb.dataset.name = n.name;
    cb.addEventListener("change", function () {
      cb.disabled = true;
      api("pipeline/nodes/" + encodeURIComponent(n.name),
          { method: "PUT", json: { enabled: cb.checked, session_id: state.session } })
        .then(loadGraph, function (e) { cb.checked = !cb.checked; notice(e.message); })
        .finally(function () { cb.disabled = false; });
    });
    label.append(cb, document.createTextNode(" " + n.name));
    box.appendChild(label);
  });
}

export function resetGraphState() {
  Object.keys(state.nodes).forEach(function (k) { state.nodes[k].g.removeAttribute("data-status"); });
}

export function markNode(name, status, ms) {
  var n = state.nodes[name];
  if (!n) return;
  n.g.setAttribute("data-status", status);
  if (ms !== undefined) n.time.textContent = status + " · " + ms.toFixed(1) + " ms";
  else n.time.textContent = status === "running" ? "running…" : status;
}
