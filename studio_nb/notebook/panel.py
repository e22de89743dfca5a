"""``ChatPanel``: an ipywidgets chat with the Studio pipeline that never blocks the kernel.

    panel = ChatPanel()            # uses the kernel's shared pipeline
    panel                          # show it; type, Send, watch the answer stream in
    fut = panel.send("what is a ParallelGroup?")   # the same, from code
    fut.result(timeout=60)         # the Response; panel.answer / steps / sources are final

``send`` starts a Turn (``pipe.ask``) and follows it with a task on studio-nb's
background event loop (``kernel.sync``, the one bridge every sync front end uses), so the
kernel's main thread stays free: the user can run other cells while an answer arrives.
The task renders the turn's live view (``turn.view``) as parts arrive and sets widget
values from that thread (ipykernel sends comm messages thread-safely); redraws are
throttled. Stop stops the
Turn, which cancels the running operator and so stops generation.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from html import escape
from typing import Any

import ipywidgets as widgets

from studio_nb import present
from studio_nb.errors import BusyError, ConfigError, StudioError, UnknownSessionError
from studio_nb.kernel.sync import background_loop
from studio_nb.notebook.kernel_pipe import kernel_pipeline
from studio_nb.notebook.throttle import Throttle


class ChatPanel(widgets.VBox):
    """Input, Send/Stop, streamed answer, the steps with timings, sources, session picker, Clear."""

    def __init__(
        self,
        pipeline: Any = None,
        *,
        session: str = "default",
        user: str = "local",
        updates_per_second: float = 10.0,
        **kwargs: Any,
    ) -> None:
        self._pipe = pipeline
        self.session = session
        self.user = user
        self.updates_per_second = updates_per_second
        self.state = present.View()
        self.answer_updates = 0  # how many times the answer was redrawn (streaming is visible)
        self._future: concurrent.futures.Future | None = None
        self._turn_obj: Any = None
        self._idle = threading.Event()
        self._idle.set()
        self._question_html = ""
        self._turn_counts: dict[str, int] = {}

        self.session_picker = widgets.Combobox(
            value=session,
            options=[session],
            description="session",
            ensure_option=False,
            continuous_update=False,
            placeholder="type a new name to start a session",
        )
        self.clear_button = widgets.Button(
            description="Clear", icon="trash", tooltip="forget this session's turns"
        )
        self.answer = widgets.HTML(layout=widgets.Layout(min_height="3em"))
        self.sources = widgets.HTML()
        self.steps = widgets.HTML()
        self.status = widgets.HTML()
        self.input = widgets.Textarea(
            placeholder="Ask about SAGE, code, your notebook…", rows=2, layout=widgets.Layout(width="100%")
        )
        self.send_button = widgets.Button(description="Send", button_style="primary", icon="paper-plane")
        self.stop_button = widgets.Button(description="Stop", icon="stop", disabled=True)
        self.explain_button = widgets.Button(
            description="Explain error", icon="bug", tooltip="ask about the last traceback, with the failing cell"
        )
        self.insert_button = widgets.Button(
            description="Insert code", icon="plus", disabled=True,
            tooltip="put the answer's code block into a new cell below (shown when the kernel next replies)",
        )

        self.send_button.on_click(lambda _b: self.send())
        self.stop_button.on_click(lambda _b: self.stop())
        self.clear_button.on_click(lambda _b: self.clear())
        self.explain_button.on_click(lambda _b: self.explain_error())
        self.insert_button.on_click(lambda _b: self.insert_code())
        self.session_picker.observe(self._on_session, names="value")

        super().__init__(
            children=[
                widgets.HBox([self.session_picker, self.clear_button, self.explain_button, self.insert_button]),
                self.answer,
                self.sources,
                self.steps,
                self.status,
                widgets.HBox([self.input, widgets.VBox([self.send_button, self.stop_button])]),
            ],
            **kwargs,
        )
        self.add_class("studio-chat-panel")
        self._set_status("ready", "ready")
        if pipeline is not None:
            self.refresh_sessions()

    # ------------------------------------------------------------------ state
    @property
    def pipeline(self) -> Any:
        """The Studio pipeline this panel talks to (the kernel's shared one by default)."""
        if self._pipe is None:
            self._pipe = kernel_pipeline()
        return self._pipe

    @property
    def busy(self) -> bool:
        return not self._idle.is_set()

    @property
    def text(self) -> str:
        """The answer so far, as plain text (evidence first, then the synthesis)."""
        return self.state.answer_text if (self.state.evidence is not None or self.state.text or self.state.done) else ""

    @property
    def response(self) -> Any:
        """The last complete ``Response`` (None while streaming, after Stop or an error)."""
        return self.state.response

    def refresh_sessions(self) -> list[str]:
        """Reload the session picker's options from memory; returns them."""
        self._turn_counts = {s.session_id: s.turns for s in self.pipeline.memory.sessions(self.user)}
        names = list(self._turn_counts)
        if self.session not in names:
            names.insert(0, self.session)
        self.session_picker.options = names
        return names

    # ------------------------------------------------------------------ actions
    def send(self, text: str | None = None, *, attachments: tuple[Any, ...] = (),
             search: str = "") -> concurrent.futures.Future:
        """Ask ``text`` (default: the input box) and return a future of the ``Response``.

        The answer streams into the panel meanwhile; ``future.result(timeout)`` waits.
        ``attachments`` and ``search`` go to ``pipe.ask`` (cells attached as evidence).
        """
        text = self.input.value if text is None else text
        if not text.strip():
            raise ConfigError("nothing to send: type a question first")
        if self.busy:
            raise BusyError("a reply is still streaming: press Stop or wait for it")
        pipe = self.pipeline
        self._idle.clear()
        self.input.value = ""
        self.answer_updates = 0
        self._question_html = f"<div class='studio-question'><b>you:</b> {escape(text)}</div>"
        self.answer.value = self._question_html
        self.sources.value = self.steps.value = ""
        self._set_status("thinking", "thinking…")
        self.send_button.disabled, self.stop_button.disabled = True, False
        self.insert_button.disabled = True
        self._turn_obj = pipe.ask(text, session_id=self.session, user=self.user, attachments=attachments,
                                  search=search)
        self.state = self._turn_obj.view  # the turn's one live view; the panel only renders it
        self._future = asyncio.run_coroutine_threadsafe(self._follow(self._turn_obj), background_loop())
        return self._future

    def explain_error(self) -> concurrent.futures.Future:
        """Ask about the kernel's last traceback, the failing cell attached (as
        ``%sage_chat --explain-error``)."""
        from studio_nb.notebook.context import explain_error_request

        request = explain_error_request(_shell())
        if request is None:
            self._set_status("error", "no error to explain yet: run the failing cell first")
            raise ConfigError("no error to explain yet: run the failing cell first")
        return self.send(request.question, attachments=request.attachments, search=request.search)

    def insert_code(self) -> bool:
        """Put the last answer's code block into a new cell below (IPython's
        ``set_next_input``; the front end adds the cell with the kernel's next execute
        reply). False when the answer has no code block."""
        from studio_nb.notebook.context import insert_code

        resp = self.response
        done = resp is not None and insert_code(_shell(), resp.text)
        self._set_status("done", "code inserted below" if done else "the answer has no code block to insert")
        return done

    def stop(self) -> None:
        """Cancel the running turn (generation stops within a token); no-op when idle."""
        if self._turn_obj is not None:
            self._turn_obj.stop()
        if self._future is not None and not self._future.done():
            self._future.cancel()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no turn is running (also after Stop); returns False on timeout."""
        return self._idle.wait(timeout)

    def clear(self) -> int:
        """Stop any running turn, forget the session's turns in memory, and empty the view."""
        self.stop()
        self.wait(30)
        try:  # only this panel's user's session (studio_nb.access): missing and foreign look alike
            n = self.pipeline.memory.clear(self.session, user=self.user)
        except UnknownSessionError:
            n = 0
        self._reset_view(f"cleared {n} turn(s) of session {self.session}")
        return n

    # ------------------------------------------------------------------ internals
    def _reset_view(self, status: str) -> None:
        self.state = present.View()
        self._question_html = ""
        self.answer.value = self.sources.value = self.steps.value = ""
        self._set_status("ready", status)

    def _set_status(self, state: str, text: str) -> None:
        """One line under the answer; ``state`` (ready/thinking/done/stopped/error) is for tests and CSS."""
        self.status_state = state
        color = " style='color:#b00020'" if state == "error" else ""
        self.status.value = f"<small class='studio-status' data-state='{state}'{color}>{escape(text)}</small>"

    def _on_session(self, change: dict[str, Any]) -> None:
        new = (change["new"] or "").strip()
        if not new or new == self.session:
            return
        self.stop()
        self.wait(30)
        self.session = new
        self.refresh_sessions()
        turns = self._turn_counts.get(new, 0)
        self._reset_view(f"session {new} · {turns} earlier turn(s)")

    def _render_answer(self) -> None:
        self.answer.value = self._question_html + f"<div class='studio-answer'>{present.html(self.state)}</div>"
        self.answer_updates += 1

    async def _follow(self, turn: Any) -> Any:
        """Redraw as the turn's parts arrive (its view holds them); returns the Response."""
        throttle = Throttle(self.updates_per_second)
        state = self.state
        try:
            async for part in turn:
                kind = present.part_kind(part)
                if kind == "evidence" or (kind == "text" and throttle.ready()):
                    self._render_answer()
                elif kind == "step":
                    self.steps.value = present.steps_html(state)
            if turn.stopped:
                raise asyncio.CancelledError
            self._render_answer()
            self.steps.value = present.steps_html(state)
            self.sources.value = present.sources_html(state)
            resp = state.response
            self._set_status("done", f"done · intent {getattr(resp, 'intent', '')}")
            from studio_nb.notebook.context import code_blocks

            self.insert_button.disabled = not code_blocks(getattr(resp, "text", ""))
            self.refresh_sessions()  # a first turn creates the session in memory
            return resp
        except asyncio.CancelledError:
            turn.stop()  # the view notes "stopped"
            self._render_answer()
            self._set_status("stopped", "stopped")
            raise
        except StudioError as exc:
            self._set_status("error", f"error [{exc.code}]: {exc}")
            raise
        except Exception as exc:
            self._set_status("error", f"error: {type(exc).__name__}: {exc}")
            raise
        finally:
            self.send_button.disabled, self.stop_button.disabled = False, True
            self._idle.set()


def _shell() -> Any:
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        raise ConfigError("the ChatPanel's notebook actions need an IPython kernel")
    return shell
