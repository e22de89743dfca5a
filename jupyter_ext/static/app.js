/* The Studio page: chat over {base_url}studio/api/chat, sessions and the live pipeline graph,
 * which is also an inspector and editor of the chat's session: click an operator to see what
 * it received and produced in the last turn, switch the session's variants, and replay the
 * last turn from an operator: both answers side by side.
 *
 * ES modules, no build step: core.js (shared state, REST, DOM helpers), chat.js, graph.js,
 * inspector.js (with replay), variants.js. markdown.js (StudioMarkdown) loads before them.
 *
 * The chat on screen is remembered per server and user (localStorage) from the moment it
 * exists, so a reload lands in the same chat with its history.
 *
 * Untrusted text (model output, questions, file names, error messages) only ever reaches
 * the DOM as text nodes, through StudioMarkdown.render or textContent; no innerHTML.
 */

import { state } from "./core.js";
import { addTurn, ask, connect, initChat, loadHistory, loadSessions, onFrame } from "./chat.js";
import { loadGraph } from "./graph.js";
import { loadTrace, replayFrom, selectNode } from "./inspector.js";
import { loadVariants } from "./variants.js";

initChat();
connect();
loadGraph();
loadSessions();
loadVariants();
loadTrace();
if (state.session) loadHistory(state.session);
// tests, console: onFrame renders a frame as if the server had sent it, into a turn from addTurn
window.studio = { state: state, ask: ask, addTurn: addTurn, onFrame: onFrame, replayFrom: replayFrom,
                  selectNode: selectNode };
