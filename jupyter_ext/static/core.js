/* What every part of the Studio page shares: the server's addresses, the page's state, the
 * REST helper, and the two ways untrusted text reaches the DOM (h, svg: as text nodes only).
 */

const body = document.body;
export const BASE = body.dataset.baseUrl || "/";
export const XSRF = body.dataset.xsrf || "";
export const TOKEN = new URLSearchParams(location.search).get("token") || "";
export const API = BASE + "studio/api/";
const SVG_NS = "http://www.w3.org/2000/svg";
// localStorage is per origin: servers under one origin (JupyterHub's /user/<name>/) and
// users of one server are told apart here, or one would open another's chat (unknown_session)
const SESSION_KEY = "studio.session " + JSON.stringify([BASE, body.dataset.user || ""]);

export const $ = function (id) { return document.getElementById(id); };
export const turnsEl = $("turns"), input = $("input"), stopBtn = $("stop"), statusEl = $("status");

export function newId(prefix) {
  var a = new Uint8Array(8);
  crypto.getRandomValues(a);
  return prefix + "-" + Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
}

export function remembered() {
  try { return localStorage.getItem(SESSION_KEY); } catch (e) { return null; }  // storage may be off
}

export function remember(sid) {
  try { localStorage.setItem(SESSION_KEY, sid); } catch (e) { /* storage off: this tab still works */ }
  return sid;
}

export const state = {
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

export function h(tag, cls, txt) {
  var n = document.createElement(tag);
  if (cls) n.className = cls;
  if (txt !== undefined && txt !== null) n.textContent = String(txt);
  return n;
}

export function svg(tag, attrs, txt) {
  var n = document.createElementNS(SVG_NS, tag);
  Object.keys(attrs || {}).forEach(function (k) { n.setAttribute(k, String(attrs[k])); });
  if (txt !== undefined) n.textContent = String(txt);
  return n;
}

export function setStatus(s, label) {
  statusEl.dataset.state = s;
  statusEl.textContent = label;
}

export function notice(msg) {
  var n = h("div", "notice", msg);
  turnsEl.appendChild(n);
  setTimeout(function () { n.remove(); }, 8000);
}

// ------------------------------------------------------------------ REST
export function api(path, opts) {
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
