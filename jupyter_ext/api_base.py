"""The base of every Studio REST handler: Jupyter's auth, bounded JSON bodies, JSON errors.

``StudioAPIHandler`` (and ``ApiError``, ``jsonable``) live here, below both the REST
handlers (``rest.py``) and the upload handlers (``uploads.py``), so neither imports the
other: ``rest.rest_handlers`` lists the uploads' routes, and the uploads share this base.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sqlite3
from dataclasses import asdict, is_dataclass
from typing import Any

from jupyter_server.base.handlers import APIHandler
from tornado import web

from jupyter_ext.access import check_session, is_admin, request_user
from jupyter_ext.runtime import StudioRuntime
from studio_nb.errors import StudioError

log = logging.getLogger(__name__)

SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
SESSION_ID = re.compile(r"^[A-Za-z0-9._:@+\-]{1,128}$")
STATUS_OF_CODE = {"bad_config": 400, "bad_wiring": 409, "unknown_session": 404, "forbidden": 403, "busy": 503,
           "path_escape": 400, "turn_state": 409}


class ApiError(web.HTTPError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, log_message=message)  # tornado escapes '%' in it for the log
        self.code = code
        self.message = message


def jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


@web.stream_request_body
class StudioAPIHandler(APIHandler):
    """The base of every Studio REST handler.

    Bodies are streamed (tornado would otherwise read a whole body, up to the server's
    ``max_body_size`` of hundreds of MB, before anyone asked who sent it): :meth:`prepare`
    runs Jupyter's identity checks, refuses an unauthenticated request and a body
    announced over ``StudioExtension.api_max_body_bytes`` before a byte is read, and
    :meth:`data_received` keeps at most that many bytes. Uploads override
    :meth:`admit_body` and :meth:`data_received` to stream to disk instead.
    """

    auth_resource = "studio_nb:chat"

    async def prepare(self) -> None:
        self._body_parts: list[bytes] = []
        self._body_bytes = 0
        await super().prepare()  # Jupyter's identity, XSRF and origin checks
        if not self._finished:
            if self.current_user is None:  # refused before the body, whatever the method
                raise ApiError(403, "forbidden", "log in (a token or a session) first")
            await self.admit_body()

    async def admit_body(self) -> None:
        """Refuse an announced body over the JSON limit, and let tornado read no more than it."""
        limit = self.settings.get("studio_api_max_body_bytes", 1024 * 1024)
        length = self.content_length()
        if length is not None and length > limit:
            raise ApiError(413, "too_large", f"the request body is {length:,} bytes; the limit is {limit:,} "
                           "(StudioExtension.api_max_body_bytes)")
        set_max = getattr(self.request.connection, "set_max_body_size", None)
        if set_max is not None:
            set_max(limit)

    def data_received(self, chunk: bytes) -> None:
        limit = self.settings.get("studio_api_max_body_bytes", 1024 * 1024)
        self._body_bytes += len(chunk)
        if self._body_bytes <= limit:
            self._body_parts.append(chunk)

    def content_length(self) -> int | None:
        """The request's ``Content-Length`` (None when absent: a chunked body)."""
        raw = self.request.headers.get("Content-Length")
        if raw is None:
            return None
        try:
            return int(raw)
        except ValueError:
            raise ApiError(400, "bad_request", f"Content-Length {raw!r} is not a number") from None

    @property
    def runtime(self) -> StudioRuntime:
        return self.settings["studio_runtime"]

    @property
    def user(self) -> str:
        return request_user(self)

    @property
    def admin(self) -> bool:
        return is_admin(self)

    async def pipe(self, *, warmed: bool = True) -> Any:
        try:
            return await (self.runtime.ready() if warmed else self.runtime.pipeline())
        except StudioError as exc:
            raise ApiError(503, exc.code, f"the Studio pipeline is unavailable: {exc}") from exc
        except Exception as exc:  # e.g. a memory database that is not a database
            raise ApiError(503, storage_code(exc), "the Studio pipeline could not start: "
                           f"{type(exc).__name__}; the server log has the details") from exc

    async def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run blocking ``fn`` in a thread; StudioError and storage failures become JSON errors."""
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except StudioError as exc:
            raise ApiError(STATUS_OF_CODE.get(exc.code, 400), exc.code, str(exc)) from exc
        except (sqlite3.Error, OSError) as exc:
            log.exception("Studio storage failed in %s", getattr(fn, "__qualname__", fn))
            raise ApiError(503, "storage_error", f"the Studio data store failed ({type(exc).__name__}); "
                           "the server log has the details") from exc

    def session_query(self) -> str | None:
        """The ``?session_id=`` of the request, checked (None when absent)."""
        sid = self.get_query_argument("session_id", None)
        return session_arg(sid) if sid else None

    async def own_session(self, pipe: Any, session_id: str) -> None:
        """The one session rule: ``unknown_session`` unless the caller has a session of that name."""
        await self.call(check_session, pipe.memory, session_id, self.user, must_exist=True)

    def body_json(self) -> dict[str, Any]:
        limit = self.settings.get("studio_api_max_body_bytes", 1024 * 1024)
        if self._body_bytes > limit:
            raise ApiError(413, "too_large", f"the request body is over {limit:,} bytes "
                           "(StudioExtension.api_max_body_bytes)")
        try:
            body = json.loads(b"".join(self._body_parts) or b"{}")
        except ValueError as exc:
            raise ApiError(400, "bad_json", f"request body is not valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise ApiError(400, "bad_request", "request body must be a JSON object")
        return body

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiError):
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"code": exc.code, "message": exc.message}))
            return
        if exc is not None and not isinstance(exc, web.HTTPError):  # never a bare 500 or a traceback
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"code": storage_code(exc),
                                    "message": "the request failed unexpectedly; the server log has the details"}))
            return
        super().write_error(status_code, **kwargs)


def storage_code(exc: BaseException) -> str:
    return "storage_error" if isinstance(exc, (sqlite3.Error, OSError)) else "internal"


def session_arg(value: Any) -> str:
    if not isinstance(value, str) or not SESSION_ID.match(value):
        raise ApiError(400, "bad_request", "session_id must be 1-128 characters from letters, digits and ._:@+-")
    return value


# ---------------------------------------------------------------- pipeline
