"""``{base_url}studio/api/chat``: the Studio chat WebSocket (frames: see protocol.py).

Authentication and origin checks are Jupyter's own (WebSocketMixin + JupyterHandler +
``@ws_authenticated``); ``pre_get`` adds the authorization check on ``studio_nb:chat``.
Each chat frame (and each replay frame: the session's last turn run again from one
operator, streamed the same way) becomes its own asyncio task, so one socket can have
several requests in flight, told apart by ``request_id``; ``stop`` cancels one task, which cancels the
pipeline request down to the token generator. A bad frame costs one ``error`` frame,
never the connection.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Callable

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import ws_authenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from tornado import web
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from jupyter_ext import protocol
from jupyter_ext.access import check_session, request_user
from jupyter_ext.runtime import StudioRuntime
from studio_nb.errors import BusyError, StudioError

log = logging.getLogger(__name__)

AUTH_RESOURCE = "studio_nb:chat"


class ChatWebSocket(WebSocketMixin, WebSocketHandler, JupyterHandler):
    auth_resource = AUTH_RESOURCE

    # ---------------------------------------------------------------- settings
    @property
    def runtime(self) -> StudioRuntime:
        return self.settings["studio_runtime"]

    @property
    def frame_limit(self) -> int:
        """Largest text frame answered normally; bigger ones get a ``too_large`` error frame."""
        return self.settings["studio_max_message_size"]

    @property
    def max_message_size(self) -> int:  # tornado's transport cap: beyond it the socket is closed (1009)
        return self.settings["studio_ws_hard_limit"]

    def set_default_headers(self) -> None:
        """JupyterHandler's default headers (CSP etc.) make no sense on a websocket."""

    def get_compression_options(self) -> dict[str, Any] | None:
        return self.settings.get("websocket_compression_options", None)

    # ---------------------------------------------------------------- handshake
    async def pre_get(self) -> None:
        authorized = await ensure_async(
            self.authorizer.is_authorized(self, self.current_user, "execute", AUTH_RESOURCE)
        )
        if not authorized:
            raise web.HTTPError(403, f"not authorized to execute on {AUTH_RESOURCE}")

    @ws_authenticated
    async def get(self, *args: Any, **kwargs: Any) -> None:
        await self.pre_get()
        await super().get(*args, **kwargs)

    def open(self, *args: Any, **kwargs: Any) -> None:
        super().open(*args, **kwargs)  # starts the keep-alive pings
        self.studio_user = request_user(self)
        self.tasks: dict[str, asyncio.Task] = {}
        self.stopping: set[str] = set()
        self.runtime.start()  # no-op once started; the first chat waits for warm-up

    def on_close(self) -> None:
        for task in list(getattr(self, "tasks", {}).values()):
            task.cancel()

    # ---------------------------------------------------------------- frames in
    def on_message(self, message: str | bytes) -> None:
        """Parse, then hand off to a task: tornado waits for on_message before the next frame."""
        try:
            frame = protocol.parse_client_frame(message, max_bytes=self.frame_limit)
        except protocol.FrameError as exc:
            self.spawn(self.send_frame(protocol.error_frame(exc.code, exc.message, exc.request_id)))
            return
        if isinstance(frame, (protocol.ChatFrame, protocol.ReplayFrame)):
            self.start_chat(frame)
        elif isinstance(frame, protocol.StopFrame):
            self.stop_request(frame.request_id)
        else:
            self.spawn(self.clear_session(frame.session_id))

    def start_chat(self, frame: protocol.ChatFrame | protocol.ReplayFrame) -> None:
        rid = frame.request_id
        if rid in self.tasks:
            self.spawn(self.send_frame(protocol.error_frame(
                "duplicate_request", f"request {rid!r} is already running on this socket; use a new request_id", rid)))
            return
        try:
            release = self.runtime.acquire(self.studio_user)
        except BusyError as exc:
            self.spawn(self.send_frame(protocol.error_frame("busy", str(exc), rid)))
            return
        self.tasks[rid] = asyncio.ensure_future(self.run_chat(frame, release))

    def stop_request(self, rid: str) -> None:
        task = self.tasks.get(rid)
        if task is None:
            self.spawn(self.send_frame(protocol.error_frame(
                "unknown_request", f"no request {rid!r} is running on this socket", rid)))
            return
        self.stopping.add(rid)
        task.cancel()

    # ---------------------------------------------------------------- work
    async def start_turn(self, pipe: Any, frame: protocol.ChatFrame | protocol.ReplayFrame) -> Any:
        """The Turn a frame asks for: a new question, or a replay of one of the session's turns.

        The frame's session id names a session of this socket's user (``studio_nb.access``):
        a question starts or continues their own, whatever other users call theirs.
        """
        if isinstance(frame, protocol.ChatFrame):
            return pipe.ask(frame.message, session_id=frame.session_id, user=self.studio_user,
                            request_id=frame.request_id)
        check_session(pipe.memory, frame.session_id, self.studio_user, must_exist=True)
        original = await asyncio.to_thread(pipe.past_turn, frame.of, session_id=frame.session_id,
                                           user=self.studio_user)
        if original is None:
            from studio_nb.errors import TurnStateError

            raise TurnStateError("this session has no turn with a trace to replay; ask a question first")
        return await asyncio.to_thread(pipe.replay, original, frame.from_, params=frame.params,
                                       user=self.studio_user, request_id=frame.request_id)

    async def run_chat(self, frame: protocol.ChatFrame | protocol.ReplayFrame, release: Callable[[], None]) -> None:
        rid = frame.request_id
        from studio_nb import present

        turn = done = None
        try:
            pipe = await self.runtime.ready()
            turn = await self.start_turn(pipe, frame)
            async for part in turn:
                kind = present.part_kind(part)
                if kind == "step":
                    await self.send_frame(protocol.step_frame(part, rid))
                elif kind == "evidence":
                    await self.send_frame(protocol.evidence_frame(part, rid))
                elif kind == "text":
                    await self.send_frame(protocol.text_frame(part, rid))
                elif kind == "response":
                    done = protocol.done_frame(present.to_json(turn.view), rid)
                    if turn.replay_of is None:
                        await self.send_frame(done)
            if turn.replay_of is not None and done is not None:  # the diff needs the finished turn
                await self.send_frame(await self.replay_done(pipe, turn, done))
        except asyncio.CancelledError:
            if turn is not None:
                turn.stop()  # the turn runs on studio-nb's loop: stop it there too
            if rid in self.stopping and not self.socket_closed:
                await self.send_quietly(protocol.stopped_frame(rid, present.timings(turn.view) if turn else {}))
        except WebSocketClosedError:
            if turn is not None:
                turn.stop()
        except StudioError as exc:  # unknown_session included (a replay of a session this user has not)
            await self.send_quietly(protocol.error_frame(exc.code, str(exc), rid))
        except Exception:
            log.exception("Studio request %s failed", rid)
            await self.send_quietly(protocol.error_frame(
                "internal", "the request failed unexpectedly; the server log has the details", rid))
        finally:
            release()
            self.tasks.pop(rid, None)
            self.stopping.discard(rid)

    async def replay_done(self, pipe: Any, turn: Any, done: dict[str, Any]) -> dict[str, Any]:
        from studio_nb import diff

        original = await asyncio.to_thread(pipe.past_turn, turn.replay_of, session_id=turn.session_id,
                                           user=self.studio_user)
        done["replay_of"] = turn.replay_of
        if original is not None:
            done["diff"] = await asyncio.to_thread(lambda: diff(original, turn).to_dict())
        return done

    async def clear_session(self, session_id: str) -> None:
        try:
            pipe = await self.runtime.ready()
            # clear() asks check_session itself: an id this user never used is unknown_session
            turns = await asyncio.to_thread(pipe.memory.clear, session_id, user=self.studio_user)
            await self.send_frame({"type": "cleared", "session_id": session_id, "turns": turns})
        except WebSocketClosedError:
            pass
        except StudioError as exc:
            await self.send_quietly(protocol.error_frame(exc.code, str(exc)))
        except Exception:
            log.exception("Studio clear of %s failed", session_id)
            await self.send_quietly(protocol.error_frame(
                "internal", "clearing the session failed unexpectedly; the server log has the details"))

    # ---------------------------------------------------------------- frames out
    @property
    def socket_closed(self) -> bool:
        return self.ws_connection is None or self.ws_connection.is_closing()

    async def send_frame(self, frame: dict[str, Any]) -> None:
        """Write one frame; awaiting the write is back-pressure from a slow client."""
        if self.socket_closed:
            raise WebSocketClosedError()
        await self.write_message(json.dumps(frame, ensure_ascii=False))

    async def send_quietly(self, frame: dict[str, Any]) -> None:
        try:
            await self.send_frame(frame)
        except WebSocketClosedError:
            pass

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        task.add_done_callback(_swallow_closed)


def _swallow_closed(task: asyncio.Task) -> None:
    if not task.cancelled() and isinstance(task.exception(), WebSocketClosedError):
        return
    if not task.cancelled() and task.exception() is not None:
        log.error("Studio websocket task failed", exc_info=task.exception())
