/* The chat: the WebSocket, each turn as it streams (evidence, then the synthesis, then the
 * checked answer with what the grounding guard dropped), and the sessions in the sidebar.
 *
 * An answer arrives in parts: an "evidence" frame (the cited passages, shown at once), then
 * "text" frames (the model's synthesis as it is generated), then "done": the turn as JSON
 * (studio_nb.present.to_json, the shape `studio-nb chat --json` prints). The page renders
 * that one shape part by part — evidence pieces with their citations, the synthesis, the
 * sentences the grounding guard dropped (struck through, with why), the note, the sources
 * searched — and never chooses between fields: a part the JSON has is shown, one it lacks
 * is not. ("text", the whole answer as plain text, is for clients that want one string.)
 */

import { $, API, TOKEN, api, h, input, newId, notice, remember, setStatus, state, stopBtn, turnsEl } from "./core.js";
import { loadGraph, markNode, resetGraphState } from "./graph.js";
import { loadTrace, renderVerdict } from "./inspector.js";
import { loadVariants } from "./variants.js";

// ------------------------------------------------------------------ WebSocket
export function connect() {
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

export function send(frame) {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return false;
  state.ws.send(JSON.stringify(frame));
  return true;
}

export function onFrame(f) {
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
    renderTurn(turn, f);
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
export function addTurn(question) {
  var box = h("article", "turn");
  box.appendChild(h("div", "question", question));
  var evidence = h("ol", "evidence");
  var answer = h("div", "answer");
  answer.dataset.state = "streaming";
  var dropped = h("div", "dropped");
  var note = h("div", "note");
  var trace = h("ol", "trace");
  var meta = h("div", "meta");
  var sources = h("ul", "sources");
  box.append(evidence, answer, dropped, note, trace, sources, meta);
  turnsEl.appendChild(box);
  box.scrollIntoView({ block: "end" });
  return { box: box, evidence: evidence, answer: answer, dropped: dropped, note: note, trace: trace, meta: meta,
           sources: sources, text: "", tokens: 0, steps: {}, pending: false, rid: null };
}

// a finished turn, from its JSON (present.to_json): each part the JSON has, where it belongs
export function renderTurn(turn, f) {
  if (f.evidence) renderEvidence(turn, f.evidence);
  if (!f.stopped) turn.text = f.synthesis || "";  // stopped: what streamed stays, marked by showDone
  renderAnswer(turn);
  renderDropped(turn, f);
  var ev = f.evidence || {};
  // the turn's note, unless it is the evidence's own (already shown in the evidence list)
  var note = f.note && !(ev.note === f.note && !(ev.pieces || []).length) ? f.note : "";
  turn.note.replaceChildren();
  if (note) turn.note.appendChild(h("em", null, note));
  showDone(turn, f);
}

// one citation as the page shows it: its ref, its heading in the tooltip
export function citation(cls, c) {
  var el = h("code", cls, c.ref);
  if (c.heading) el.title = c.heading;
  return el;
}

// the cited passages (or tool results) that answer the question: shown before the synthesis
export function renderEvidence(turn, ev) {
  turn.evidence.replaceChildren();
  (ev.pieces || []).forEach(function (p) {
    var li = h("li", "piece");
    li.value = p.n;
    li.dataset.kind = p.kind;
    li.appendChild(h(p.text.indexOf("\n") >= 0 ? "pre" : "span", "text", p.text));
    if (p.kind !== "tool") li.appendChild(citation("ref", p));
    turn.evidence.appendChild(li);
  });
  if (ev.note && !(ev.pieces || []).length) turn.evidence.appendChild(h("li", "note", ev.note));
  turn.box.scrollIntoView({ block: "end" });
}

// sentences the grounding guard removed: visible, struck through, with the reason
export function renderDropped(turn, f) {
  turn.dropped.replaceChildren();
  (f.dropped || []).forEach(function (d) {
    var row = h("div", "dropped-sentence");
    row.appendChild(h("span", "mark", "⚠ dropped as unsupported: "));
    row.appendChild(h("del", null, d.text));
    row.appendChild(h("small", "reason", " (" + d.reason + ")"));
    turn.dropped.appendChild(row);
  });
}

export function scheduleRender(turn) {
  if (turn.pending) return;
  turn.pending = true;
  requestAnimationFrame(function () { turn.pending = false; renderAnswer(turn); });
}

export function renderAnswer(turn) {
  turn.answer.replaceChildren(StudioMarkdown.render(turn.text));
  turn.answer.dataset.tokens = String(turn.tokens);
  turn.box.scrollIntoView({ block: "end" });
}

export function addStep(turn, f) {
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

export function showDone(turn, f) {
  turn.sources.replaceChildren();
  (f.sources || []).forEach(function (s, i) {
    var li = h("li", "source");
    li.appendChild(h("span", "n", "[" + (i + 1) + "] "));
    li.appendChild(citation("path", s));
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

export function finishTurn(turn, error) {
  turn.answer.dataset.state = error ? "error" : "done";
  if (error) turn.box.appendChild(h("div", "error", error));
  delete state.requests[turn.rid];
  stopBtn.disabled = Object.keys(state.requests).length === 0;
}

// one request (a chat or a replay) of this chat's session, streamed into ``view``
export function startRequest(view, frame, again) {
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

export function ask(question) {
  startRequest(addTurn(question), { type: "chat", message: question }, "send");
}

// ------------------------------------------------------------------ sessions
export function selectSession(sid, load) {
  state.session = remember(sid);
  turnsEl.replaceChildren();
  highlightSession();
  if (load) loadHistory(sid);
  loadGraph();  // toggles are per session
  loadVariants();  // and so are variants
  state.trace = null;
  loadTrace();
}

export function highlightSession() {
  Array.prototype.forEach.call($("sessions").children, function (li) {
    li.classList.toggle("active", li.dataset.sid === state.session);
  });
}

export function loadSessions() {
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

export function loadHistory(sid) {
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

/** The chat's controls: send on Enter or the button, stop every request, a new chat. */
export function initChat() {
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
}
