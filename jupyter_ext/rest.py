"""REST under ``{base_url}studio/api/``: graph and toggles, sessions, knowledge, health.

Every handler is an ``APIHandler`` with ``@web.authenticated`` and ``@authorized``, so
tokens, cookies, XSRF on browser POSTs and origin checks are exactly Jupyter's. Errors
are JSON ``{"code", "message"}`` with the StudioError code. Blocking work (SQLite, the
embedder, ingestion) runs in a worker thread so the server loop keeps streaming tokens.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web

from jupyter_ext.access import AccessDenied, check_session, request_user
from jupyter_ext.runtime import StudioRuntime
from studio_nb.errors import StudioError

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_STATUS = {"bad_config": 400, "bad_wiring": 409, "unknown_session": 404, "forbidden": 403, "busy": 503}


class ApiError(web.HTTPError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, log_message=message.replace("%", "%%"))
        self.code = code


def jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


class StudioAPIHandler(APIHandler):
    auth_resource = "studio_nb:chat"

    @property
    def runtime(self) -> StudioRuntime:
        return self.settings["studio_runtime"]

    @property
    def user(self) -> str:
        return request_user(self)

    async def pipe(self, *, warmed: bool = True) -> Any:
        try:
            return await (self.runtime.ready() if warmed else self.runtime.pipeline())
        except StudioError as exc:
            raise ApiError(503, exc.code, f"the Studio pipeline is unavailable: {exc}") from exc

    async def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run blocking ``fn`` in a thread; StudioError/AccessDenied become JSON errors."""
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except StudioError as exc:
            raise ApiError(_STATUS.get(exc.code, 400), exc.code, str(exc)) from exc

    def own_session(self, pipe: Any, session_id: str) -> None:
        try:
            check_session(pipe.memory, session_id, self.user, must_exist=True)
        except AccessDenied as exc:
            raise ApiError(exc.status, exc.code, exc.message) from exc

    def body_json(self) -> dict[str, Any]:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError as exc:
            raise ApiError(400, "bad_json", f"request body is not valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise ApiError(400, "bad_request", "request body must be a JSON object")
        return body

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiError):
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"code": exc.code, "message": exc.log_message.replace("%%", "%")}))
            return
        super().write_error(status_code, **kwargs)


# ---------------------------------------------------------------- pipeline
class GraphHandler(StudioAPIHandler):
    """GET studio/api/pipeline: nodes with layout boxes and live stats, edges, warm-up state."""

    auth_resource = "studio_nb:pipeline"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        pipe = await self.pipe(warmed=False)
        graph = pipe.pipeline.graph()
        graph["runtime"] = self.runtime.state()
        self.finish(json.dumps(graph, default=str))


class NodeHandler(StudioAPIHandler):
    """PUT/POST studio/api/pipeline/nodes/<name> {"enabled": bool}: hot-toggle a branch."""

    auth_resource = "studio_nb:pipeline"

    @web.authenticated
    @authorized
    async def put(self, name: str) -> None:
        enabled = self.body_json().get("enabled")
        if not isinstance(enabled, bool):
            raise ApiError(400, "bad_request", 'send {"enabled": true} or {"enabled": false}')
        pipe = await self.pipe(warmed=False)
        if name not in pipe.pipeline.nodes:
            raise ApiError(404, "unknown_node", f"no node {name!r}; GET studio/api/pipeline lists them")
        try:
            pipe.pipeline.set_enabled(name, enabled)
        except StudioError as exc:
            raise ApiError(_STATUS.get(exc.code, 400), exc.code, str(exc)) from exc
        self.finish(json.dumps({"name": name, "enabled": enabled}))

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
        self.own_session(pipe, session_id)
        turns = await self.call(pipe.memory.history, session_id, user=self.user)
        self.finish(json.dumps({"session_id": session_id, "turns": jsonable(turns)}, default=str))

    @web.authenticated
    @authorized
    async def delete(self, session_id: str) -> None:
        pipe = await self.pipe()
        self.own_session(pipe, session_id)
        turns = await self.call(pipe.memory.clear, session_id, user=self.user)
        self.finish(json.dumps({"session_id": session_id, "deleted_turns": turns}))


class ExportHandler(StudioAPIHandler):
    """GET studio/api/sessions/<id>/export?format=markdown|json: a download."""

    @web.authenticated
    @authorized
    async def get(self, session_id: str) -> None:
        fmt = self.get_query_argument("format", "markdown")
        if fmt not in ("markdown", "json"):
            raise ApiError(400, "bad_request", f"unknown format {fmt!r}; use format=markdown or format=json")
        pipe = await self.pipe()
        self.own_session(pipe, session_id)
        text = await self.call(pipe.memory.export, session_id, fmt, user=self.user)
        ext, mime = ("md", "text/markdown") if fmt == "markdown" else ("json", "application/json")
        self.set_header("Content-Disposition", f'attachment; filename="{_SAFE_NAME.sub("_", session_id)}.{ext}"')
        self.finish(text, set_content_type=f"{mime}; charset=utf-8")


# ---------------------------------------------------------------- knowledge
class DomainsHandler(StudioAPIHandler):
    """GET studio/api/knowledge: the knowledge domains and their sizes."""

    auth_resource = "studio_nb:knowledge"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        pipe = await self.pipe()
        domains = await self.call(pipe.knowledge.domains)
        self.finish(json.dumps({"domains": jsonable(domains)}, default=str))


class UploadHandler(StudioAPIHandler):
    """POST studio/api/knowledge/<domain>/files (multipart): save, ingest, return the report.

    Files land in ``<upload_root>/<domain>/`` under sanitised names and the whole folder
    is ingested incrementally, so earlier uploads to the domain are kept.
    """

    auth_resource = "studio_nb:knowledge"

    @web.authenticated
    @authorized
    async def post(self, domain: str) -> None:
        limit = self.settings["studio_upload_max_bytes"]
        if len(self.request.body) > limit:
            raise ApiError(413, "too_large", f"upload is {len(self.request.body)} bytes; the limit is {limit} bytes")
        files = [f for parts in self.request.files.values() for f in parts]
        if not files:
            raise ApiError(400, "bad_request", "no files in the request; send multipart/form-data with file fields")
        pipe = await self.pipe()
        target = Path(self.settings["studio_upload_root"]) / _SAFE_NAME.sub("_", domain)
        saved = await asyncio.to_thread(_save_files, target, files)
        report = await self.call(pipe.ingest, target, domain, progress=False)
        self.set_status(201)
        self.finish(json.dumps({"domain": domain, "saved": saved, "report": jsonable(report)}, default=str))


def _save_files(target: Path, files: list[Any]) -> list[dict[str, Any]]:
    target.mkdir(parents=True, exist_ok=True)
    saved = []
    for f in files:
        name = _SAFE_NAME.sub("_", Path(f["filename"] or "upload").name).lstrip(".")[:128] or "upload"
        path = target / name
        path.write_bytes(f["body"])
        saved.append({"name": name, "bytes": len(f["body"])})
    return saved


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
        hits = await self.call(pipe.search, query, domains=domains, k=min(k, 50), mode=mode)
        from studio_nb.services.knowledge.types import hit_dict

        self.finish(json.dumps({"query": query, "hits": [hit_dict(h, max_chars=1000) for h in hits]}, default=str))


# ---------------------------------------------------------------- health
class HealthHandler(StudioAPIHandler):
    """GET studio/api/health: warm-up state always; the pipeline's own health once built."""

    auth_resource = "studio_nb:pipeline"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        out: dict[str, Any] = {"runtime": self.runtime.state()}
        if self.runtime.is_ready:
            pipe = await self.pipe()
            out["pipeline"] = await asyncio.to_thread(pipe.health)
        self.finish(json.dumps(out, default=str))


def rest_handlers(prefix: str = "studio/api") -> list[tuple[str, type]]:
    sid = r"(?P<session_id>[A-Za-z0-9._:@+\-]{1,128})"
    return [
        (f"{prefix}/pipeline", GraphHandler),
        (rf"{prefix}/pipeline/nodes/(?P<name>[^/]+)", NodeHandler),
        (f"{prefix}/sessions", SessionsHandler),
        (rf"{prefix}/sessions/{sid}", SessionHandler),
        (rf"{prefix}/sessions/{sid}/export", ExportHandler),
        (f"{prefix}/knowledge", DomainsHandler),
        (rf"{prefix}/knowledge/(?P<domain>[A-Za-z0-9._-]{{1,64}})/files", UploadHandler),
        (f"{prefix}/search", SearchHandler),
        (f"{prefix}/health", HealthHandler),
    ]
