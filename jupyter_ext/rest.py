"""REST under ``{base_url}studio/api/``: graph, toggles and variants, sessions and their
traces, knowledge, health.

Every handler is an ``APIHandler`` with ``@web.authenticated`` and ``@authorized``, so
tokens, cookies, XSRF on browser POSTs and origin checks are exactly Jupyter's. Errors
are JSON ``{"code", "message"}`` with the StudioError code, also for failures nobody
foresaw (``internal``) and a broken database (``storage_error``). Blocking work (SQLite,
the embedder, ingestion) runs in a worker thread so the server loop keeps streaming.

Who may do what (DESIGN §6): a session id names a session of the requesting user
(``studio_nb.access``: alice's "s1" is not bob's "s1", so ids can be neither probed nor
claimed); knowledge domains are shared (read-only) or private to the uploader (the
knowledge manager's rule); pipeline toggles are per session, global ones and the
server's details are the admin's; an operator's last error text is shown to the user
whose request it was (and to admins), everyone else sees only its status.
"""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from jupyter_ext.api_base import SAFE_NAME, SESSION_ID, ApiError, StudioAPIHandler, jsonable, session_arg


class GraphHandler(StudioAPIHandler):
    """GET studio/api/pipeline[?session_id=]: nodes with layout and live stats, edges,
    warm-up state; ``enabled`` is what runs for the caller's session.

    The stats are the server's, shared by every user, except ``last_error``: an error's
    text can quote what a user asked or uploaded, so a user who is not an admin sees the
    last error of *their own* requests there (None if theirs all went well), while
    ``last_status`` and the counters stay everyone's.
    """

    auth_resource = "studio_nb:pipeline"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        pipe = await self.pipe(warmed=False)
        if hasattr(pipe, "graph"):
            graph = pipe.graph(session_id=self.session_query(), user=self.user)
        else:  # a custom pipeline factory without per-session toggles
            graph = pipe.pipeline.graph()
        if not self.admin:
            _own_errors(graph, getattr(getattr(pipe.pipeline, "engine", None), "stats", {}), self.user)
        graph["runtime"] = self.runtime.state()
        self.finish(json.dumps(graph, default=str))


def _own_errors(graph: dict[str, Any], stats: dict[str, Any], user: str) -> None:
    """Replace each node's ``last_error`` by ``user``'s own last error at that node."""
    for node in graph.get("nodes", ()):
        shown = node.get("stats")
        if shown:
            live = stats.get(node["name"])
            error_for = getattr(live, "error_for", None)
            shown["last_error"] = error_for(user) if error_for else None


class NodeHandler(StudioAPIHandler):
    """PUT/POST studio/api/pipeline/nodes/<name>: switch a branch off or on.

    ``{"enabled": false, "session_id": "s1"}`` switches it for the caller's session only
    (their A/B; the caller's "s1", used yet or not: the answer is the same whatever other
    users call their sessions); ``{"enabled": false, "scope": "global"}`` (also the
    meaning of a body without ``session_id``) switches it for everyone and is for admins
    only (403).
    """

    auth_resource = "studio_nb:pipeline"

    @web.authenticated
    @authorized
    async def put(self, name: str) -> None:
        body = self.body_json()
        enabled = body.get("enabled")
        if not isinstance(enabled, bool):
            raise ApiError(400, "bad_request", 'send {"enabled": true} or {"enabled": false}')
        sid = body.get("session_id")
        scope = body.get("scope", "session" if sid is not None else "global")
        if scope not in ("session", "global") or (scope == "session" and sid is None):
            raise ApiError(400, "bad_request", 'scope is "session" (with a session_id) or "global"')
        pipe = await self.pipe(warmed=False)
        if name not in pipe.pipeline.nodes:
            raise ApiError(404, "unknown_node", f"no node {name!r}; GET studio/api/pipeline lists them")
        if scope == "global":
            if not self.admin:
                raise ApiError(403, "forbidden", "global toggles change every user's pipeline and are for the "
                               'server\'s admins; send {"enabled": ..., "session_id": "<yours>"} to switch it '
                               "for your session")
            await self.call(pipe.pipeline.set_enabled, name, enabled)
            self.finish(json.dumps({"name": name, "enabled": enabled}))
            return
        sid = session_arg(sid)
        off = await self.call(pipe.set_session_enabled, name, enabled, session_id=sid, user=self.user)
        self.finish(json.dumps({"name": name, "enabled": enabled, "session_id": sid, "scope": "session",
                                "disabled": sorted(off)}))

    post = put


class VariantsHandler(StudioAPIHandler):
    """GET studio/api/pipeline/variants?session_id=: the settings (intent, search and answer
    mode) and operators the caller's session may switch, and what it uses now.

    PUT ``{"session_id", "setting": "answer_mode", "value": "extractive"}`` or
    ``{"session_id", "node": "prompt_builder", "operator": "OtherRegisteredOp"}`` (a null
    value or operator: back to the default) switches it for that session of the caller
    only (variants are keyed by (user, session), like sessions).
    """

    auth_resource = "studio_nb:pipeline"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        pipe = await self.pipe(warmed=False)
        self.finish(json.dumps(await self.call(pipe.session_variants, self.session_query(), self.user)))

    @web.authenticated
    @authorized
    async def put(self) -> None:
        body = self.body_json()
        sid = session_arg(body.get("session_id"))
        pipe = await self.pipe(warmed=False)
        kw: dict[str, Any] = {}
        for key in ("setting", "value", "node", "operator"):
            value = body.get(key)
            if value is not None and not isinstance(value, str):
                raise ApiError(400, "bad_request", f"{key!r} must be a string or null")
            kw[key] = value
        if kw["node"] is not None and kw["node"] not in pipe.pipeline.nodes:
            raise ApiError(404, "unknown_node", f"no node {kw['node']!r}; GET studio/api/pipeline lists them")
        out = await self.call(pipe.set_session_variant, session_id=sid, user=self.user, **kw)
        self.finish(json.dumps(out))

    post = put


# ---------------------------------------------------------------- sessions
class SessionsHandler(StudioAPIHandler):
    """GET studio/api/sessions: the current user's sessions, most recent first."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        pipe = await self.pipe()
        sessions = await self.call(pipe.memory.sessions, self.user)
        self.finish(json.dumps({"sessions": jsonable(sessions)}))


class SessionHandler(StudioAPIHandler):
    """GET studio/api/sessions/<id>: its turns; DELETE: clear it."""

    @web.authenticated
    @authorized
    async def get(self, session_id: str) -> None:
        pipe = await self.pipe()
        await self.own_session(pipe, session_id)
        turns = await self.call(pipe.memory.history, session_id, user=self.user)
        self.finish(json.dumps({"session_id": session_id, "turns": jsonable(turns)}, default=str))

    @web.authenticated
    @authorized
    async def delete(self, session_id: str) -> None:
        pipe = await self.pipe()
        await self.own_session(pipe, session_id)
        turns = await self.call(pipe.memory.clear, session_id, user=self.user)
        self.finish(json.dumps({"session_id": session_id, "deleted_turns": turns}))


class TraceHandler(StudioAPIHandler):
    """GET studio/api/sessions/<id>/trace[?request_id=]: the trace of the session's last turn
    (or of ``request_id``): every operator run with its status, timings, input and output
    (the evidence, the prompt, the raw generated text...). What the page's inspector shows.
    A session id the caller never used answers ``unknown_session``, whoever else uses it."""

    @web.authenticated
    @authorized
    async def get(self, session_id: str) -> None:
        rid = self.get_query_argument("request_id", None)
        if rid is not None and not SESSION_ID.match(rid):
            raise ApiError(400, "bad_request", "request_id must be 1-128 characters from letters, digits and ._:@+-")
        pipe = await self.pipe()
        await self.own_session(pipe, session_id)
        view = await self.call(pipe.trace_view, session_id, user=self.user, request_id=rid)
        if view is None:
            raise ApiError(404, "no_trace", f"session {session_id!r} has no turn with a trace"
                           + (f" with request_id {rid!r}" if rid else "") + "; ask a question first")
        self.finish(json.dumps(view, default=str))


class ExportHandler(StudioAPIHandler):
    """GET studio/api/sessions/<id>/export?format=markdown|json: a download."""

    @web.authenticated
    @authorized
    async def get(self, session_id: str) -> None:
        fmt = self.get_query_argument("format", "markdown")
        if fmt not in ("markdown", "json"):
            raise ApiError(400, "bad_request", f"unknown format {fmt!r}; use format=markdown or format=json")
        pipe = await self.pipe()
        await self.own_session(pipe, session_id)
        text = await self.call(pipe.memory.export, session_id, fmt, user=self.user)
        ext, mime = ("md", "text/markdown") if fmt == "markdown" else ("json", "application/json")
        self.set_header("Content-Disposition", f'attachment; filename="{SAFE_NAME.sub("_", session_id)}.{ext}"')
        self.finish(text, set_content_type=f"{mime}; charset=utf-8")


# ---------------------------------------------------------------- knowledge
class DomainsHandler(StudioAPIHandler):
    """GET studio/api/knowledge: the domains the caller may read (shared and their own)."""

    auth_resource = "studio_nb:knowledge"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        pipe = await self.pipe()
        domains = jsonable(await self.call(pipe.knowledge.domains, user=self.user))
        if not self.admin:  # where the data lives is the admin's business
            for d in domains:
                d.pop("path", None)
        self.finish(json.dumps({"domains": domains}, default=str))


class SearchHandler(StudioAPIHandler):
    """GET studio/api/search?q=...&domains=a,b&k=5&mode=hybrid|dense|lexical."""

    auth_resource = "studio_nb:knowledge"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        query = self.get_query_argument("q", "").strip()
        if not query:
            raise ApiError(400, "bad_request", "missing query: add ?q=<text>")
        domains_arg = self.get_query_argument("domains", "")
        domains = [d for d in domains_arg.split(",") if d] or None
        try:
            k = int(self.get_query_argument("k", "5"))
        except ValueError:
            raise ApiError(400, "bad_request", "k must be an integer") from None
        mode = self.get_query_argument("mode", "hybrid")
        pipe = await self.pipe()
        hits = await self.call(pipe.search, query, domains=domains, k=min(k, 50), mode=mode, user=self.user)
        from studio_nb.services.knowledge.types import hit_dict

        self.finish(json.dumps({"query": query, "hits": [hit_dict(h, max_chars=1000) for h in hits]}, default=str))


# ---------------------------------------------------------------- health
class HealthHandler(StudioAPIHandler):
    """GET studio/api/health: warm-up state always; the pipeline's own health once built.

    Admins get everything (paths, versions, configuration, every domain); other users
    only the status, since the rest describes the server, not their work.
    """

    auth_resource = "studio_nb:pipeline"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        state = self.runtime.state()
        if not self.admin and "error" in state:
            state["error"] = {"code": state["error"]["code"], "message": "see the server log"}
        out: dict[str, Any] = {"runtime": state}
        if self.runtime.is_ready:
            pipe = await self.pipe()
            detail = self.admin
            try:
                out["pipeline"] = await self.call(pipe.health, detail=detail)
            except TypeError:  # a custom pipeline whose health() takes no arguments
                out["pipeline"] = await self.call(pipe.health) if detail else {"status": "ready"}
        self.finish(json.dumps(out, default=str))


def rest_handlers(prefix: str = "studio/api") -> list[tuple[str, type]]:
    from jupyter_ext.uploads import IngestsHandler, UploadHandler

    sid = r"(?P<session_id>[A-Za-z0-9._:@+\-]{1,128})"
    return [
        (f"{prefix}/pipeline", GraphHandler),
        (f"{prefix}/pipeline/variants", VariantsHandler),
        (rf"{prefix}/pipeline/nodes/(?P<name>[^/]+)", NodeHandler),
        (f"{prefix}/sessions", SessionsHandler),
        (rf"{prefix}/sessions/{sid}", SessionHandler),
        (rf"{prefix}/sessions/{sid}/export", ExportHandler),
        (rf"{prefix}/sessions/{sid}/trace", TraceHandler),
        (f"{prefix}/knowledge", DomainsHandler),
        (rf"{prefix}/knowledge/(?P<domain>[A-Za-z0-9._-]{{1,64}})/files", UploadHandler),
        (f"{prefix}/ingests", IngestsHandler),
        (f"{prefix}/search", SearchHandler),
        (f"{prefix}/health", HealthHandler),
    ]
