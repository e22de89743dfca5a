"""Knowledge uploads: ``POST studio/api/knowledge/<domain>/files`` and ``GET studio/api/ingests``.

Issue #21 found that an upload was read whole into memory before anyone asked who sent
it (a 200 MB body without a token: 403 at an RSS peak of 1.6 GB) and that a small PDF
could keep the server busy for minutes. So an upload is refused, whenever it can be,
before its body is read: who is asking and whether they may write the domain, the
``Content-Length`` against ``upload_max_bytes``, their uploads in flight, the chunks they
already hold. The body that is accepted streams through :mod:`jupyter_ext.multipart`
into one anonymous owner-only file per part (``O_TMPFILE`` under the uploads folder), with
the byte limit counted as it arrives, so memory stays flat whatever the size. Then the
files are placed (links are never followed, see ``confined``), ingested on the upload
pool within the ingest limits, and kept only if the ingest stored them: a refused or
cancelled upload puts the domain folder back as it was. A client that disconnects
cancels its ingest at the next file, page or embedding slice. Errors are
``{"code": "too_large" | "limit" | ..., "message"}`` and name the setting to change.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import os
import sqlite3
import stat
from pathlib import Path
from typing import Any, BinaryIO

from jupyter_server.auth.decorator import authorized
from tornado import web

from jupyter_ext.ingest_jobs import IngestJob, IngestJobs, TooManyIngests
from jupyter_ext.multipart import FilePart, MultipartError, MultipartReader, TooManyParts, boundary_of
from jupyter_ext.api_base import SAFE_NAME, ApiError, StudioAPIHandler, jsonable
from studio_nb.errors import StudioError
from studio_nb.services.knowledge.limits import IngestCancelled, IngestLimits, LimitExceeded

log = logging.getLogger(__name__)

#: tornado's own cap sits just above ours, so a chunked body over the limit gets our JSON 413
_TRANSPORT_SLACK = 64 * 1024


class UploadHandler(StudioAPIHandler):
    """POST studio/api/knowledge/<domain>/files[?scope=shared] (multipart): save, ingest, report.

    Files land in ``<data_dir>/uploads/<domain>/`` under sanitised names and the folder
    is ingested incrementally, so earlier uploads to the domain are kept. A new domain is
    private to the uploader; an admin may create a shared one with ``?scope=shared``.
    """

    auth_resource = "studio_nb:knowledge"

    # ------------------------------------------------------------------ before the body
    async def prepare(self) -> None:
        self._reader: MultipartReader | None = None
        self._job: IngestJob | None = None
        self._stage_fd: int | None = None
        self._received, self._in_post = 0, False
        await super().prepare()  # Jupyter's checks, then admit_body

    async def admit_body(self) -> None:
        """Every check that can be made from the headers, then get ready to stream."""
        from studio_nb.services.knowledge.manager import check_domain_name

        allowed = self.authorizer.is_authorized(self, self.current_user, "write", self.auth_resource)
        if not (await allowed if inspect.isawaitable(allowed) else allowed):
            raise ApiError(403, "forbidden", "you may not write knowledge domains on this server")
        domain = self.path_kwargs["domain"]
        await self.call(check_domain_name, domain)  # "." and ".." end here: 400 bad_config
        if self.shared and not self.admin:
            raise ApiError(403, "forbidden", "only the server's admins create shared domains; omit scope=shared")
        limit = self.settings["studio_upload_max_bytes"]
        length = self.content_length()
        if length is not None and length > limit:
            raise ApiError(413, "too_large", f"the upload is {length:,} bytes; the limit is {limit:,} bytes "
                           "(StudioExtension.upload_max_bytes)")
        try:
            boundary = boundary_of(self.request.headers.get("Content-Type", ""))
        except MultipartError as exc:
            raise ApiError(400, "bad_request", str(exc)) from None
        try:
            self._job = self.jobs.start(self.user, domain)
        except TooManyIngests as exc:
            raise ApiError(429, "limit", f"{exc}; the limit is {self.jobs.max_per_user} per user "
                           "(StudioExtension.ingest_max_concurrent_per_user); GET studio/api/ingests shows "
                           "them, try again when they are done") from None
        pipe = await self.pipe()
        await self.call(pipe.knowledge.check_write, domain, self.user, admin=self.admin)
        self._limits = await self._user_limits(pipe)
        self._root = Path(self.upload_root(pipe))
        self._stage_fd = await self.call(_staging_dir, self._root)
        self._reader = MultipartReader(boundary, lambda: anonymous_file(self._stage_fd),
                                       max_parts=self.settings["studio_upload_max_files"])
        set_max = getattr(self.request.connection, "set_max_body_size", None)
        if set_max is not None:  # tornado reads no more than this, whatever the headers said
            set_max(limit + _TRANSPORT_SLACK)

    async def _user_limits(self, pipe: Any) -> IngestLimits:
        """The server's ingest limits with what this user's domains already hold."""
        limits: IngestLimits = self.settings["studio_ingest_limits"]
        if limits.max_user_chunks is None:
            return limits
        held = await self.call(pipe.knowledge.owned_chunks, self.user)
        if held >= limits.max_user_chunks:
            raise ApiError(413, "limit", limits.exceeded("max_user_chunks", f"your domains hold {held:,} chunks")
                           .message + "; remove a domain of yours first")
        return dataclasses.replace(limits, user_chunks=held)

    # ------------------------------------------------------------------ the body
    def data_received(self, chunk: bytes) -> None:
        if self._reader is None or self._finished:
            return
        self._received += len(chunk)
        self._job.received(self._received, self.content_length())
        limit = self.settings["studio_upload_max_bytes"]
        try:
            if self._received > limit:
                raise ApiError(413, "too_large", f"the upload is over {limit:,} bytes, the limit "
                               "(StudioExtension.upload_max_bytes)")
            self._reader.feed(chunk)
        except TooManyParts as exc:
            self._refuse(ApiError(413, "limit", f"{exc}; the limit is {self._reader.max_parts} files per upload "
                                  "(StudioExtension.upload_max_files)"))
        except MultipartError as exc:
            self._refuse(ApiError(400, "bad_request", str(exc)))
        except ApiError as exc:
            self._refuse(exc)
        except OSError as exc:
            log.exception("Studio upload: writing a part to disk failed")
            self._refuse(ApiError(503, "storage_error", f"the upload could not be stored ({type(exc).__name__}); "
                                  "the server log has the details"))

    def _refuse(self, exc: ApiError) -> None:
        """Answer now; tornado reads no more of the body and closes the connection."""
        self._cleanup()
        self.send_error(exc.status_code, exc_info=(type(exc), exc, None))

    # ------------------------------------------------------------------ after the body
    @web.authenticated
    @authorized
    async def post(self, domain: str) -> None:
        self._in_post = True
        try:
            try:
                parts = self._reader.finish()
            except MultipartError as exc:
                raise ApiError(400, "bad_request", str(exc)) from None
            if not parts:
                raise ApiError(400, "bad_request", "no files in the request; send multipart/form-data with file fields")
            pipe = await self.pipe()
            placed = await self.call(place_files, self._root, domain, parts)
            report = None
            try:
                report = await self._ingest(pipe, domain)
            finally:
                await self.call(placed.commit if report is not None else placed.rollback)
        except IngestCancelled:
            log.info("Studio upload to %r by %r cancelled: the client went away", domain, self.user)
            return
        finally:
            self._cleanup(force=True)
        self.set_status(201)
        self.finish(json.dumps({"domain": domain, "saved": placed.saved, "report": jsonable(report)}, default=str))

    async def _ingest(self, pipe: Any, domain: str) -> Any:
        """The ingest on the upload pool; its failures as JSON errors."""
        try:
            return await self._job.run(pipe.ingest, self._root / domain, domain, progress=False, user=self.user,
                                       admin=self.admin, shared=self.shared, limits=self._limits)
        except LimitExceeded as exc:
            raise ApiError(413, "limit", f"nothing of this upload was kept: {exc}") from exc
        except IngestCancelled:
            raise
        except StudioError as exc:
            raise ApiError(403 if exc.code == "forbidden" else 400, exc.code, str(exc)) from exc
        except (sqlite3.Error, OSError) as exc:
            log.exception("Studio upload: the ingest of %r failed", domain)
            raise ApiError(503, "storage_error", f"the knowledge store failed ({type(exc).__name__}); "
                           "the server log has the details") from exc

    # ------------------------------------------------------------------ lifecycle
    def on_connection_close(self) -> None:
        super().on_connection_close()
        if self._job is not None:
            self._job.cancel()  # a running ingest stops at its next checkpoint
        if not self._in_post:  # the body was cut short: post() never runs, on_finish neither
            self._cleanup()

    def on_finish(self) -> None:
        if not self._in_post:
            self._cleanup()

    def _cleanup(self, force: bool = False) -> None:
        """Close the part files and the staging folder, give the upload slot back (idempotent)."""
        reader, self._reader = getattr(self, "_reader", None), None
        if reader is not None:
            reader.close()
        fd, self._stage_fd = getattr(self, "_stage_fd", None), None
        if fd is not None:
            os.close(fd)
        job = getattr(self, "_job", None)
        if job is not None and (force or not self._in_post):
            job.close()

    # ------------------------------------------------------------------ helpers
    @property
    def jobs(self) -> IngestJobs:
        return self.settings["studio_ingest_jobs"]

    @property
    def shared(self) -> bool:
        return self.get_query_argument("scope", "private") == "shared"

    def upload_root(self, pipe: Any) -> str:
        """``<data_dir>/uploads`` of the running pipeline (so STUDIO_NB_DATA_DIR counts too)."""
        configured = self.settings.get("studio_upload_root")
        if configured:
            return configured
        data_dir = getattr(pipe, "config", {}).get("data_dir")
        if not data_dir:
            raise ApiError(503, "bad_config", "the pipeline has no data_dir; set StudioExtension.data_dir")
        return str(Path(data_dir) / "uploads")


class IngestsHandler(StudioAPIHandler):
    """GET studio/api/ingests: the caller's uploads in progress — stage (``receiving``,
    ``queued``, ``waiting`` for another ingest of the domain, ``reading`` files,
    ``embedding`` chunks, ``saving``), how far (``done`` of ``total``), seconds so far."""

    auth_resource = "studio_nb:knowledge"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        jobs: IngestJobs = self.settings["studio_ingest_jobs"]
        self.finish(json.dumps({"ingests": [j.view() for j in jobs.of(self.user)]}))


# ---------------------------------------------------------------- files on disk
def _staging_dir(root: Path) -> int:
    """An fd of the uploads folder, where the parts are staged as anonymous files."""
    from studio_nb.services.confined import Root

    root.mkdir(parents=True, exist_ok=True)
    return Root(root).open_dir("")


def anonymous_file(dir_fd: int) -> BinaryIO:
    """A 0600 file in the folder ``dir_fd`` that has no name (gone when closed, or when the
    server dies): ``O_TMPFILE``, else a random name unlinked at once."""
    try:
        fd = os.open(".", os.O_RDWR | os.O_TMPFILE | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    except (AttributeError, OSError):  # not Linux, or a file system without O_TMPFILE
        name = f".upload-{os.urandom(8).hex()}"
        fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
        os.unlink(name, dir_fd=dir_fd)
    return os.fdopen(fd, "w+b")


def safe_name(filename: str) -> str:
    """The client's file name reduced to a plain name in the domain folder."""
    return SAFE_NAME.sub("_", Path(filename or "upload").name).lstrip(".")[:128] or "upload"


@dataclasses.dataclass
class Placed:
    """Files an upload put in its domain folder, and what they replaced, so the upload can
    be kept (:meth:`commit`) or undone (:meth:`rollback`)."""

    dir_fd: int
    saved: list[dict[str, Any]]
    backups: list[tuple[str, str | None]]  # (name, hidden hard link to what it replaced)

    def commit(self) -> None:
        try:
            for _, backup in self.backups:
                if backup is not None:
                    _unlink(self.dir_fd, backup)
        finally:
            os.close(self.dir_fd)

    def rollback(self) -> None:
        try:
            for name, backup in reversed(self.backups):
                if backup is not None:
                    os.rename(backup, name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)
                else:
                    _unlink(self.dir_fd, name)
        finally:
            os.close(self.dir_fd)


def place_files(root: Path, domain: str, parts: list[FilePart]) -> Placed:
    """Write each part into ``root/domain`` without following any link (see confined.py);
    a regular file it replaces is kept under a hidden name until the upload is decided."""
    from studio_nb.services.confined import Root, write_file

    root.mkdir(parents=True, exist_ok=True)
    dir_fd = Root(root).open_dir(domain, create=True)
    placed = Placed(dir_fd, [], [])
    try:
        for part in parts:
            name = safe_name(part.filename)
            placed.backups.append((name, _keep_old(dir_fd, name)))
            write_file(dir_fd, name, part.file)
            placed.saved.append({"name": name, "bytes": part.size})
        return placed
    except BaseException:
        placed.rollback()
        raise


def _keep_old(dir_fd: int, name: str) -> str | None:
    """A hidden second name for the regular file at ``name`` (None when there is none).
    Its suffix is one the ingest never reads."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    backup = f".{name}.{os.urandom(4).hex()}.replaced"
    os.link(name, backup, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
    return backup


def _unlink(dir_fd: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
