/* The Studio page: chat over {base_url}studio/api/chat, sessions and the live pipeline graph,
 * which is also an inspector and editor of the chat's session: click an operator to see what
 * it received and produced in the last turn (GET sessions/<id>/trace), switch the session's
 * variants (intent / search / answer mode, another registered operator: pipeline/variants),
 * and replay the last turn from an operator (a "replay" frame): both answers side by side.
 *
 * An answer arrives in parts: an "evidence" frame (the cited passages, shown at once), then
 * "text" frames (the model's synthesis as it is generated), then "done" with the checked
 * synthesis and the sentences the grounding guard dropped (shown struck through, with why).
 *
 * The chat on screen is remembered per server and user (localStorage, see SESSION_KEY) from
 * the moment it exists, so a reload lands in the same chat with its history.
 *
 * Untrusted text (model output, questions, file names, error messages) only ever reaches
 * the DOM as text nodes, through StudioMarkdown.render or textContent; no innerHTML.
 */
(function () {
  "use strict";

  var body = document.body;
  var BASE = body.dataset.baseUrl || "/";
  var XSRF = body.dataset.xsrf || "";
  var TOKEN = new URLSearchParams(location.search).get("token") || "";
  var API = BASE + "studio/api/";
  var SVG_NS = "http://www.w3.org/2000/svg";
  // localStorage is per origin: servers under one origin (JupyterHub's /user/<name>/) and
  // users of one server are told apart here, or one would open another's chat (unknown_session)
  var SESSION_KEY = "studio.session " + JSON.stringify([BASE, body.dataset.user || ""]);

  var $ = function (id) { return document.getElementById(id); };
  var turnsEl = $("turns"), input = $("input"), stopBtn = $("stop"), statusEl = $("status");

  var state = {
    ws: null,
    session: remembered() || remember(newId("s")),  // a new chat is remembered at once: a reload lands in it
    requests: {},   // request_id -> turn view
    graph: null,
    nodes: {},      // operator name -> {g, rect, time}
    retry: 500,
    trace: null,    // the session's last turn as GET sessions/<id>/trace returns it
    selected: null, // the operator the inspector shows
    run: -1,        // which of its runs (-1: the last)
    variants: null, // GET pipeline/variants for this session
  };

  function newId(prefix) {
    var a = new Uint8Array(8);
    crypto.getRandomValues(a);
    return prefix + "-" + Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function remembered() {
    try { return localStorage.getItem(SESSION_KEY); } catch (e) { return null; }  // storage may be off
  }

  function remember(sid) {
    try { localStorage.setItem(SESSION_KEY, sid); } catch (e) { /* storage off: this tab still works */ }
    return sid;
  }

  function h(tag, cls, txt) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (txt !== undefined && txt !== null) n.textContent = String(txt);
    return n;
  }

  function setStatus(s, label) {
    statusEl.dataset.state = s;
    statusEl.textContent = label;
  }

  // ------------------------------------------------------------------ REST
  function api(path, opts) {
    opts = opts || {};
    var headers = opts.headers || {};
    headers["X-XSRFToken"] = XSRF;
    if (TOKEN) headers["Authorization"] = "token " + TOKEN;
    if (opts.json !== undefined) {
      headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(opts.json);
    }
    return fetch(API + path, { method: opts.method || "GET", headers: headers, body: opts.body,
                               credentials: "same-origin" })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (data) {
          if (!r.ok) {
            var err = new Error((data.code ? data.code + ": " : "") + (data.message || r.statusText));
            err.code = data.code;
            throw err;
          }
          return data;
        });
      });
  }

  // ------------------------------------------------------------------ WebSocket
  function connect() {
    var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + API + "chat";
    if (TOKEN) url += "?token=" + encodeURIComponent(TOKEN);
    var ws = new WebSocket(url);
    state.ws = ws;
    setStatus("connecting", "connecting…");
    ws.onopen = function () { state.retry = 500; setStatus("open", "connected"); };
    ws.onclose = function () {
      setStatus("closed", "disconnected — retrying");
      Object.keys(state.requests).forEach(function (rid) { finishTurn(state.requests[rid], "connection closed"); });
      setTimeout(connect, state.retry);
      state.retry = Math.min(state.retry * 2, 10000);
    };
    ws.onmessage = function (ev) {
      var frame;
      try { frame = JSON.parse(ev.data); } catch (e) { return; }
      onFrame(frame);
    };
  }

  function send(frame) {
    if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return false;
    state.ws.send(JSON.stringify(frame));
    return true;
  }

  function onFrame(f) {
    var turn = f.request_id ? state.requests[f.request_id] : null;
    if (f.type === "step") {
      markNode(f.operator, f.status, f.duration_ms);
      if (turn) addStep(turn, f);
    } else if (f.type === "evidence") {
      if (turn) renderEvidence(turn, f);
    } else if (f.type === "text") {
      if (!turn) return;
      if (f.restart) turn.text = "";
      turn.text += f.content;
      turn.tokens += 1;
      scheduleRender(turn);
    } else if (f.type === "done") {
      if (!turn) return;
      if (f.evidence) renderEvidence(turn, f.evidence);
      if (!f.stopped) turn.text = typeof f.synthesis === "string" && f.evidence ? f.synthesis : (f.text || "");
      turn.note = f.note || "";
      if (turn.verdict && !f.stopped) {  // a replay: the whole answer, like the "before" side next to it
        turn.evidence.replaceChildren();
        turn.text = f.text || "";
      }
      renderAnswer(turn);
      renderDropped(turn, f);
      showDone(turn, f);
      if (f.diff && turn.verdict) renderVerdict(turn, f.diff);
      finishTurn(turn, null);
      loadSessions();
      loadGraph();
      loadTrace();
    } else if (f.type === "error") {
      if (turn) finishTurn(turn, f.code + ": " + f.message);
      else notice(f.code + ": " + f.message);
    } else if (f.type === "cleared") {
      turnsEl.replaceChildren();
      loadSessions();
    }
  }

  // ------------------------------------------------------------------ turns
  function addTurn(question) {
    var box = h("article", "turn");
    box.appendChild(h("div", "question", question));
    var evidence = h("ol", "evidence");
    var answer = h("div", "answer");
    answer.dataset.state = "streaming";
    var dropped = h("div", "dropped");
    var trace = h("ol", "trace");
    var meta = h("div", "meta");
    var sources = h("ul", "sources");
    box.append(evidence, answer, dropped, trace, sources, meta);
    turnsEl.appendChild(box);
    box.scrollIntoView({ block: "end" });
    return { box: box, evidence: evidence, answer: answer, dropped: dropped, trace: trace, meta: meta,
             sources: sources, text: "", tokens: 0, steps: {}, pending: false, rid: null };
  }

  // the cited passages (or tool results) that answer the question: shown before the synthesis
  function renderEvidence(turn, ev) {
    turn.evidence.replaceChildren();
    (ev.pieces || []).forEach(function (p) {
      var li = h("li", "piece");
      li.value = p.n;
      li.dataset.kind = p.kind;
      li.appendChild(h(p.text.indexOf("\n") >= 0 ? "pre" : "span", "text", p.text));
      if (p.kind !== "tool") li.appendChild(h("code", "ref", p.ref));
      turn.evidence.appendChild(li);
    });
    if (ev.note && !(ev.pieces || []).length) turn.evidence.appendChild(h("li", "note", ev.note));
    turn.box.scrollIntoView({ block: "end" });
  }

  // sentences the grounding guard removed: visible, struck through, with the reason
  function renderDropped(turn, f) {
    turn.dropped.replaceChildren();
    (f.dropped || []).forEach(function (d) {
      var row = h("div", "dropped-sentence");
      row.appendChild(h("span", "mark", "⚠ dropped as unsupported: "));
      row.appendChild(h("del", null, d.text));
      row.appendChild(h("small", "reason", " (" + d.reason + ")"));
      turn.dropped.appendChild(row);
    });
  }

  function scheduleRender(turn) {
    if (turn.pending) return;
    turn.pending = true;
    requestAnimationFrame(function () { turn.pending = false; renderAnswer(turn); });
  }

  function renderAnswer(turn) {
    if (!turn.text && turn.note) {  // no synthesis survived: say so where the answer would be
      turn.answer.replaceChildren(h("em", "note", turn.note));
    } else {
      turn.answer.replaceChildren(StudioMarkdown.render(turn.text));
    }
    turn.answer.dataset.tokens = String(turn.tokens);
    turn.box.scrollIntoView({ block: "end" });
  }

  function addStep(turn, f) {
    var row = turn.steps[f.operator];
    if (!row) {
      row = h("li", "step");
      row.appendChild(h("span", "op", f.operator));
      row.appendChild(h("span", "ms", ""));
      turn.steps[f.operator] = row;
      turn.trace.appendChild(row);
    }
    row.dataset.status = f.status;
    row.lastChild.textContent = f.duration_ms !== undefined ? f.duration_ms.toFixed(1) + " ms" : f.status;
  }

  function showDone(turn, f) {
    (f.sources || []).forEach(function (s, i) {
      var li = h("li", "source");
      li.appendChild(h("span", "n", "[" + (i + 1) + "] "));
      li.appendChild(h("span", "path", s.domain + "/" + s.path + ":L" + s.start_line + "-L" + s.end_line));
      if (s.heading) li.appendChild(h("span", "heading", " § " + s.heading));
      turn.sources.appendChild(li);
    });
    var parts = [];
    if (f.stopped) parts.push("stopped");
    if (f.intent) parts.push(f.intent);
    if (f.usage) parts.push(f.usage.completion_tokens + " tokens");
    var total = 0;
    Object.keys(f.timings || {}).forEach(function (k) { total = Math.max(total, f.timings[k]); });
    if (f.mode) parts.push(f.mode);
    if (f.guardrail) parts.push("guardrail: " + f.guardrail);
    turn.meta.textContent = parts.join(" · ");
  }

  function finishTurn(turn, error) {
    turn.answer.dataset.state = error ? "error" : "done";
    if (error) turn.box.appendChild(h("div", "error", error));
    delete state.requests[turn.rid];
    stopBtn.disabled = Object.keys(state.requests).length === 0;
  }

  function notice(msg) {
    var n = h("div", "notice", msg);
    turnsEl.appendChild(n);
    setTimeout(function () { n.remove(); }, 8000);
  }

  // one request (a chat or a replay) of this chat's session, streamed into ``view``
  function startRequest(view, frame, again) {
    var rid = newId("r");
    view.rid = rid;
    frame.request_id = rid;
    frame.session_id = state.session;
    state.requests[rid] = view;
    resetGraphState();
    if (!send(frame)) {
      finishTurn(view, "not connected; retrying the connection — " + again + " again in a moment");
      return;
    }
    stopBtn.disabled = false;
  }

  function ask(question) {
    startRequest(addTurn(question), { type: "chat", message: question }, "send");
  }

  $("ask").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var q = input.value.trim();
    if (!q) return;
    input.value = "";
    ask(q);
  });
  input.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); $("ask").requestSubmit(); }
  });
  stopBtn.addEventListener("click", function () {
    Object.keys(state.requests).forEach(function (rid) { send({ type: "stop", request_id: rid }); });
  });
  $("new-session").addEventListener("click", function () { selectSession(newId("s"), false); });

  // ------------------------------------------------------------------ sessions
  function selectSession(sid, load) {
    state.session = remember(sid);
    turnsEl.replaceChildren();
    highlightSession();
    if (load) loadHistory(sid);
    loadGraph();  // toggles are per session
    loadVariants();  // and so are variants
    state.trace = null;
    loadTrace();
  }

  function highlightSession() {
    Array.prototype.forEach.call($("sessions").children, function (li) {
      li.classList.toggle("active", li.dataset.sid === state.session);
    });
  }

  function loadSessions() {
    api("sessions").then(function (data) {
      var ul = $("sessions");
      ul.replaceChildren();
      data.sessions.forEach(function (s) {
        var li = h("li", "session");
        li.dataset.sid = s.session_id;
        li.appendChild(h("span", "title", s.title || s.session_id));
        li.appendChild(h("span", "count", " (" + s.turns + ")"));
        li.addEventListener("click", function () { selectSession(s.session_id, true); });
        var del = h("button", "delete", "×");
        del.title = "delete this session";
        del.addEventListener("click", function (ev) {
          ev.stopPropagation();
          api("sessions/" + encodeURIComponent(s.session_id), { method: "DELETE" }).then(loadSessions, notice);
        });
        li.appendChild(del);
        ul.appendChild(li);
      });
      highlightSession();
    }).catch(function (e) { notice("sessions: " + e.message); });
  }

  function loadHistory(sid) {
    api("sessions/" + encodeURIComponent(sid)).then(function (data) {
      data.turns.forEach(function (t) {
        var turn = addTurn(t.question);
        turn.text = t.answer;
        renderAnswer(turn);
        showDone(turn, { intent: t.intent, sources: t.sources });
        turn.answer.dataset.state = "done";
      });
    }).catch(function (e) {
      if (e.code !== "unknown_session") notice("history: " + e.message);  // a new chat has none yet
    });
  }

  // ------------------------------------------------------------------ pipeline graph
  function svg(tag, attrs, txt) {
    var n = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs || {}).forEach(function (k) { n.setAttribute(k, String(attrs[k])); });
    if (txt !== undefined) n.textContent = String(txt);
    return n;
  }

  function loadGraph() {  // the graph as this chat's session sees it (its own branch toggles)
    return api("pipeline?session_id=" + encodeURIComponent(state.session))
      .then(function (g) { state.graph = g; drawGraph(g); showWarmUp(g.runtime); })
      .catch(function (e) { notice("pipeline: " + e.message); });
  }

  // while the server loads its models, say how far it got (the first answer waits for it)
  function showWarmUp(runtime) {
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

  function drawGraph(g) {
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

  function statsLabel(s) {
    var ms = s.mean_ms !== undefined ? s.mean_ms : (s.total_ms && s.runs ? s.total_ms / s.runs : null);
    return s.runs + " runs" + (ms !== null && ms !== undefined ? " · " + Number(ms).toFixed(1) + " ms avg" : "");
  }

  function drawToggles(g) {
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

  function resetGraphState() {
    Object.keys(state.nodes).forEach(function (k) { state.nodes[k].g.removeAttribute("data-status"); });
  }

  function markNode(name, status, ms) {
    var n = state.nodes[name];
    if (!n) return;
    n.g.setAttribute("data-status", status);
    if (ms !== undefined) n.time.textContent = status + " · " + ms.toFixed(1) + " ms";
    else n.time.textContent = status === "running" ? "running…" : status;
  }

  // ------------------------------------------------------------------ variants
  function loadVariants() {
    return api("pipeline/variants?session_id=" + encodeURIComponent(state.session))
      .then(function (v) { state.variants = v; drawVariants(); renderInspector(); })
      .catch(function (e) { notice("variants: " + e.message); });
  }

  function putVariant(body) {
    body.session_id = state.session;
    return api("pipeline/variants", { method: "PUT", json: body })
      .then(function (v) { state.variants = v; drawVariants(); renderInspector(); })
      .catch(function (e) { notice(e.message); loadVariants(); });
  }

  function select(options, value, onChange) {
    var sel = document.createElement("select");
    options.forEach(function (o) {
      var opt = document.createElement("option");
      opt.value = o;
      opt.textContent = o;
      sel.appendChild(opt);
    });
    sel.value = value;
    sel.addEventListener("change", function () { onChange(sel.value); });
    return sel;
  }

  function drawVariants() {
    var box = $("variants");
    box.replaceChildren();
    ((state.variants || {}).settings || []).forEach(function (s) {
      var label = h("label", "variant");
      var sel = select(s.options, s.value, function (v) { putVariant({ setting: s.name, value: v }); });
      sel.dataset.setting = s.name;
      label.append(document.createTextNode(s.label + " "), sel);
      box.appendChild(label);
    });
  }

  // ------------------------------------------------------------------ inspector
  function loadTrace() {
    return api("sessions/" + encodeURIComponent(state.session) + "/trace")
      .then(function (t) { state.trace = t; renderInspector(); })
      .catch(function () { state.trace = null; renderInspector(); });  // no turn yet in this session
  }

  function selectNode(name) {
    state.selected = name;
    state.run = -1;
    Object.keys(state.nodes).forEach(function (k) {
      if (k === name) state.nodes[k].g.setAttribute("data-selected", "true");
      else state.nodes[k].g.removeAttribute("data-selected");
    });
    renderInspector();
    $("inspector").scrollIntoView({ block: "nearest" });
  }

  function valueBlock(title, v) {
    var box = h("div", "value");
    box.appendChild(h("h4", null, title + (v && v.type ? " · " + v.type : "")));
    ((v && v.parts) || []).forEach(function (p) {
      var part = h("div", "part");
      part.dataset.label = p.label;
      part.appendChild(h("b", null, p.label));
      part.appendChild(h("pre", null, p.text));
      box.appendChild(part);
    });
    if (v && v.json !== null && v.json !== undefined) {
      var raw = document.createElement("details");
      raw.appendChild(h("summary", null, "JSON"));
      raw.appendChild(h("pre", "json", JSON.stringify(v.json, null, 1)));
      box.appendChild(raw);
    }
    return box;
  }

  function renderInspector() {
    var box = $("inspector");
    var name = state.selected;
    box.dataset.node = name || "";
    box.replaceChildren();
    if (!name) { box.appendChild(h("p", "hint", "Ask a question, then click an operator in the graph.")); return; }
    var head = h("div", "head");
    head.appendChild(h("span", "name", name));
    var ops = state.variants && state.variants.operators && state.variants.operators[name];
    if (ops && ops.options.length > 1) {
      var sel = select(ops.options, ops.current, function (v) { putVariant({ node: name, operator: v }); });
      sel.className = "operator-choice";
      head.append(document.createTextNode("operator"), sel);
    } else if (ops) {
      head.appendChild(h("span", "meta", ops.current));
    }
    var replayBtn = h("button", "replay", "Replay from here");
    replayBtn.type = "button";
    replayBtn.disabled = !state.trace;
    replayBtn.addEventListener("click", function () { replayFrom(name); });
    head.appendChild(replayBtn);
    box.appendChild(head);
    if (!state.trace) { box.appendChild(h("p", "hint", "No turn in this chat yet.")); return; }
    var runs = state.trace.trace.records.filter(function (r) { return r.operator === name; });
    if (!runs.length) { box.appendChild(h("p", "hint", name + " did not run in the last turn.")); return; }
    if (runs.length > 1) {
      var pick = h("div", "runs");
      runs.forEach(function (r, i) {
        var b = h("button", null, "run " + (i + 1));
        b.type = "button";
        b.addEventListener("click", function () { state.run = i; renderInspector(); });
        pick.appendChild(b);
      });
      box.appendChild(pick);
    }
    var rec = runs[state.run >= 0 && state.run < runs.length ? state.run : runs.length - 1];
    var meta = [rec.reused ? "reused from the recorded turn" : rec.status];
    if (!rec.reused) meta.push(rec.duration_ms.toFixed(1) + " ms");
    if (rec.attempt) meta.push("attempt " + (rec.attempt + 1));
    if (rec.error || rec.note) meta.push(rec.error || rec.note);
    var line = h("div", "meta", meta.join(" · "));
    line.dataset.status = rec.reused ? "reused" : rec.status;
    box.appendChild(line);
    var io = h("div", "io");
    io.append(valueBlock("input", rec.input), valueBlock("output", rec.output));
    box.appendChild(io);
  }

  // ------------------------------------------------------------------ replay
  function finalAnswer(trace) {
    var answer = "";
    (trace ? trace.trace.records : []).forEach(function (r) {
      if (r.output && r.output.type === "Response") {
        (r.output.parts || []).forEach(function (p) { if (p.label === "answer") answer = p.text; });
      }
    });
    return answer;
  }

  function addReplay(node) {
    var box = h("article", "turn replay");
    box.appendChild(h("div", "question", "Replay of “" + (state.trace ? state.trace.question : "") +
                                          "” from " + node));
    var sides = h("div", "sides");
    var before = h("div", "side before");
    before.appendChild(h("h4", null, "before"));
    var was = h("div", "answer");
    was.appendChild(StudioMarkdown.render(finalAnswer(state.trace)));
    before.appendChild(was);
    var after = h("div", "side after");
    after.appendChild(h("h4", null, "after"));
    var evidence = h("ol", "evidence");
    var answer = h("div", "answer");
    answer.dataset.state = "streaming";
    var dropped = h("div", "dropped");
    after.append(evidence, answer, dropped);
    sides.append(before, after);
    var trace = h("ol", "trace"), meta = h("div", "meta"), sources = h("ul", "sources"), verdict = h("div", "verdict");
    box.append(sides, verdict, trace, sources, meta);
    turnsEl.appendChild(box);
    box.scrollIntoView({ block: "end" });
    return { box: box, evidence: evidence, answer: answer, dropped: dropped, trace: trace, meta: meta,
             sources: sources, verdict: verdict, text: "", tokens: 0, steps: {}, pending: false, rid: null };
  }

  function renderVerdict(turn, d) {
    turn.verdict.replaceChildren();
    [["evidence", d.evidence], ["prompt", d.prompt], ["answer", d.answer]].forEach(function (pair, i) {
      if (i) turn.verdict.appendChild(document.createTextNode(" · "));
      var same = pair[1] && pair[1].same;
      var none = pair[1] && pair[1].b === null;  // e.g. no prompt: the model was not asked this time
      var span = h("span", same ? "same" : "changed", pair[0] + (same ? " same" : none ? " none now" : " changed"));
      span.dataset.part = pair[0];
      turn.verdict.appendChild(span);
    });
    var reused = (d.timings || []).filter(function (t) { return t.b_reused; }).map(function (t) { return t.operator; });
    if (reused.length) turn.verdict.appendChild(h("div", "reused", "reused: " + reused.join(", ")));
  }

  function replayFrom(node) {
    startRequest(addReplay(node), { type: "replay", from: node }, "replay");
  }

  // ------------------------------------------------------------------ start
  connect();
  loadGraph();
  loadSessions();
  loadVariants();
  loadTrace();
  if (state.session) loadHistory(state.session);
  window.studio = { state: state, ask: ask, replayFrom: replayFrom, selectNode: selectNode };  // tests, console
})();
