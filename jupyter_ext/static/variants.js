/* The session's variants: how this chat routes, searches and answers (GET/PUT
 * pipeline/variants); the inspector offers the operators a node may switch to.
 */

import { $, api, h, notice, state } from "./core.js";
import { renderInspector } from "./inspector.js";

export function loadVariants() {
  return api("pipeline/variants?session_id=" + encodeURIComponent(state.session))
    .then(function (v) { state.variants = v; drawVariants(); renderInspector(); })
    .catch(function (e) { notice("variants: " + e.message); });
}

export function putVariant(body) {
  body.session_id = state.session;
  return api("pipeline/variants", { method: "PUT", json: body })
    .then(function (v) { state.variants = v; drawVariants(); renderInspector(); })
    .catch(function (e) { notice(e.message); loadVariants(); });
}

export function select(options, value, onChange) {
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

export function drawVariants() {
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
