/* The inspector: click an operator to see what it received and produced in this chat's
 * last turn (GET sessions/<id>/trace); replay the turn from it (a "replay" frame) and see
 * both answers side by side with what changed.
 */

import { $, api, h, state, turnsEl } from "./core.js";
import { startRequest } from "./chat.js";
import { putVariant, select } from "./variants.js";

export function loadTrace() {
  return api("sessions/" + encodeURIComponent(state.session) + "/trace")
    .then(function (t) { state.trace = t; renderInspector(); })
    .catch(function () { state.trace = null; renderInspector(); });  // no turn yet in this session
}

export function selectNode(name) {
  state.selected = name;
  state.run = -1;
  Object.keys(state.nodes).forEach(function (k) {
    if (k === name) state.nodes[k].g.setAttribute("data-selected", "true");
    else state.nodes[k].g.removeAttribute("data-selected");
  });
  renderInspector();
  $("inspector").scrollIntoView({ block: "nearest" });
}

export function valueBlock(title, v) {
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

export function renderInspector() {
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
export function finalAnswer(trace) {
  var answer = "";
  (trace ? trace.trace.records : []).forEach(function (r) {
    if (r.output && r.output.type === "Response") {
      (r.output.parts || []).forEach(function (p) { if (p.label === "answer") answer = p.text; });
    }
  });
  return answer;
}

export function addReplay(node) {
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
  var note = h("div", "note");
  after.append(evidence, answer, dropped, note);
  sides.append(before, after);
  var trace = h("ol", "trace"), meta = h("div", "meta"), sources = h("ul", "sources"), verdict = h("div", "verdict");
  box.append(sides, verdict, trace, sources, meta);
  turnsEl.appendChild(box);
  box.scrollIntoView({ block: "end" });
  return { box: box, evidence: evidence, answer: answer, dropped: dropped, note: note, trace: trace, meta: meta,
           sources: sources, verdict: verdict, text: "", tokens: 0, steps: {}, pending: false, rid: null };
}

export function renderVerdict(turn, d) {
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

export function replayFrom(node) {
  startRequest(addReplay(node), { type: "replay", from: node }, "replay");
}
