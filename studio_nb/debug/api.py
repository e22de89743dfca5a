"""The Studio pipeline's debugger: breakpoints, replay, resume, past turns, variants.

``pipe.debug`` is a ``Debugger`` that sits beside the pipeline and its Turns. It uses
only their public side: the studio's ``pipeline``, ``memory``, ``turns`` (the bounded
TurnLog), ``variants`` (SessionVariants), ``context_for`` and ``start_turn``, and a Turn's
``state``, ``answered``, ``is_paused`` and ``trace``. A Turn reaches back only through the
two calls it is given with ``turn.bind(context, debugger)``: ``check_pending`` and
``snapshot``. The Studio pipeline keeps its short names (``pipe.replay``,
``pipe.breakpoint``, ...) as one-line delegates.

Everything here works per request: a replay's params and replacements, a session's
variants, and the nodes a replay switches off (the memory saver, so a replay does not add
a second turn to the session unless ``save=True``) live in that request's
``RequestContext`` — the pipeline other sessions use never changes.
"""

from __future__ import annotations

import threading
from typing import Any

from studio_nb.access import check_session
from studio_nb.errors import ConfigError, TurnStateError
from studio_nb.kernel.context import new_request_id
from studio_nb.turn import Turn


class Debugger:
    """See a turn and change it; ``studio`` is the StudioPipeline it serves."""

    def __init__(self, studio: Any) -> None:
        self.studio = studio
        self._breakpoints: dict[str, frozenset[str] | None] = {}  # operator -> sessions (None: all)
        self._bp_lock = threading.Lock()

    @property
    def pipeline(self) -> Any:
        return self.studio.pipeline

    # ------------------------------------------------------------------ breakpoints
    def breakpoint(self, name: str, enabled: bool = True, *, session_id: str | None = None) -> dict[str, Any]:
        """Make the next turns pause before operator ``name`` (``enabled=False``: stop that).

        ``session_id`` limits it to one session's turns. A paused turn shows where it waits
        (``turn.paused_at``) and what (``turn.pending``); ``turn.resume(msg)`` goes on. A
        paused turn holds no model slot; later turns *of the same session* wait for it,
        since a session's turns run in order. Returns the breakpoints now set.
        """
        self.pipeline._node(name)  # an unknown name lists the operators
        with self._bp_lock:
            points = dict(self._breakpoints)
            current = points.get(name, frozenset())  # None: every session
            if enabled:
                points[name] = None if session_id is None or current is None else current | {session_id}
            elif session_id is None or current is None or not current - {session_id}:
                points.pop(name, None)
            else:
                points[name] = current - {session_id}
            self._breakpoints = points
        return self.breakpoints

    def clear_breakpoints(self) -> None:
        """Remove every breakpoint (turns already paused stay paused until resumed)."""
        with self._bp_lock:
            self._breakpoints = {}

    @property
    def breakpoints(self) -> dict[str, list[str] | None]:
        """operator -> the sessions it applies to (None: every session)."""
        return {k: None if v is None else sorted(v) for k, v in self._breakpoints.items()}

    def breakpoints_for(self, session_id: str | None) -> frozenset[str]:
        """The operators a turn of ``session_id`` pauses before."""
        return frozenset(k for k, v in self._breakpoints.items() if v is None or session_id in v)

    def check_pending(self, node: str, msg: Any) -> None:
        """What ``turn.resume(msg)`` may hand on: a message the paused node accepts."""
        from studio_nb.kernel.typing_utils import acceptor, type_name

        want = self.pipeline.nodes[node].input_type
        if not acceptor(want)(msg):
            raise ConfigError(f"{node!r} takes {type_name(want)}, not {type(msg).__name__}; edit a copy of "
                              "turn.pending, e.g. dataclasses.replace(turn.pending, max_tokens=16)")

    # ------------------------------------------------------------------ finding turns
    def _owned(self, turn: Turn, user: str | None) -> Turn:
        if user is not None and turn.user != user:
            from studio_nb.access import unknown_session

            raise unknown_session(turn.session_id)  # another user's turn looks like no turn
        return turn

    def past_turn(self, request_id: str | None = None, *, session_id: str | None = None,
                  user: str | None = None) -> Turn | None:
        """A finished turn with its trace: from this process's recent turns, else rebuilt
        from the memory database (so it works after a restart). ``request_id`` None: the
        session's last turn. ``user`` None is a trusted caller (a notebook on its data dir)."""
        turns = self.studio.turns
        turn = turns.get(request_id, user) if request_id else (
            turns.last(session_id, user or "local") if session_id else None)
        if turn is not None and (session_id is None or turn.session_id == session_id):
            if not (turn.done and not turn.answered and session_id is not None):
                return self._owned(turn, user)
            request_id = turn.request_id  # stopped here: another process may have finished it
        if session_id is None:
            raise ConfigError("past_turn needs the session_id of a turn that is not in this process's recent turns")
        stored = self.studio.memory.trace(session_id, request_id, user=user)
        if (stored is None or stored[1] is None) and turn is not None:
            return self._owned(turn, user)
        if stored is None or stored[1] is None:
            return None
        from studio_nb.debug.trace import TurnTrace
        import studio_nb.messages  # noqa: F401  (registers the message classes with the codec)

        row, data = stored
        return Turn.restored(row.question, session_id=row.session_id, request_id=row.request_id, user=row.user,
                             trace=TurnTrace.from_json(data))

    def trace_view(self, session_id: str, *, user: str | None, request_id: str | None = None) -> dict[str, Any] | None:
        """The JSON the Studio page's inspector shows: the session's last turn (or
        ``request_id``) with each operator's input and output explained."""
        check_session(self.studio.memory, session_id, user, must_exist=True)
        turn = self.past_turn(request_id, session_id=session_id, user=user)
        if turn is None or turn.trace is None:
            return None
        return {"request_id": turn.request_id, "session_id": turn.session_id, "question": turn.question,
                "replay_of": turn.replay_of, "state": turn.state, "trace": turn.trace.view()}

    # ------------------------------------------------------------------ replay
    def replay(self, turn: Turn | str, from_: str | None = None, *, params: dict[str, dict[str, Any]] | None = None,
               replace: dict[str, Any] | None = None, save: bool = False, session_id: str | None = None,
               user: str | None = None, request_id: str | None = None) -> Turn:
        """Run ``turn`` again from operator ``from_`` (default: the first changed one), with
        ``params`` changed or operators replaced (``replace={"prompt_builder": MyBuilder()}``)
        for this replay only, reusing the recorded outputs of everything upstream
        (``reused=True`` in the new turn's trace). Returns a new Turn, streaming like any other.

        ``user`` names the server user asking: their params must pass the server's
        allow-list and bounds (``studio_nb.debug.limits``); ``user=None`` is a trusted
        in-process caller (a notebook on its own data dir) and may change anything.

        The replay is not saved to the session's memory unless ``save=True``: it is an
        experiment on a turn already answered, and the next question should not be answered
        with both in its history. ``turn`` may be a request id (``session_id`` then finds
        it in the memory database after a restart).
        """
        original = turn if isinstance(turn, Turn) else self.past_turn(turn, session_id=session_id, user=user)
        if original is None:
            raise TurnStateError(f"no turn {turn!r} with a stored trace to replay")
        self._owned(original, user)
        if not original.done:
            raise TurnStateError(f"turn {original.request_id} is {original.state}; replay it once it has ended "
                                 "(turn.wait(), or turn.resume() a paused one)")
        if original.trace is None or not len(original.trace):
            raise TurnStateError(f"turn {original.request_id} has no trace to replay")
        if user is not None:  # a server user's request: only what the allow-list permits (debug/limits.py)
            from studio_nb.debug.limits import check_replay_params

            params = check_replay_params(self.pipeline, params or {})
            if replace:
                raise ConfigError("replacing an operator is for in-process callers; a server replay sends params")
        params, replace = dict(params or {}), dict(replace or {})
        both = sorted(set(params) & set(replace))
        if both:
            raise ConfigError(f"give {', '.join(both)} either params or a replacement operator, not both")
        overrides = self.studio.variants.overrides(original.session_id, original.user, extra_params=params)
        for name, op in replace.items():
            overrides[name] = self.pipeline.override(name, operator=op)
        savers = self._savers()
        new = Turn(original.question, session_id=original.session_id, request_id=request_id or new_request_id(),
                   user=original.user)
        new.replay_of = original.request_id
        meta = {"replay_of": original.request_id, "from": from_, "params": params, "saved": save,
                "replaced": {name: type(op).__name__ for name, op in replace.items()}}
        ctx = self.studio.context_for(new, disabled=frozenset() if save else savers, overrides=overrides, meta=meta)
        from studio_nb.messages import rebind

        memo: dict = {}
        value, ctx = self.pipeline.replay_context(
            original.trace, from_=from_, changed=set(params) | set(replace) | (savers if save else set()),
            rebind=lambda v: rebind(v, new.request_id, memo), context=ctx)
        return self.studio.start_turn(new, value, ctx)

    def _savers(self) -> frozenset[str]:
        from studio_nb.operators.memory_saver import MemorySaverOp

        return frozenset(n.name for n in self.pipeline.nodes.values() if isinstance(n.op, MemorySaverOp))

    def resume(self, snapshot: Any) -> Turn:
        """Continue a paused turn from ``turn.snapshot()`` (a dict, its JSON, or a file path),
        here or in another process; returns a new Turn for it (the same request id)."""
        from studio_nb.debug import snapshot as snap

        doc = snap.load(snapshot)
        live = self.studio.turns.get(doc["request_id"])
        if live is not None and live.is_paused:
            raise TurnStateError(f"turn {doc['request_id']} is still paused in this process; turn.resume() or "
                                 "turn.stop() it before resuming its snapshot")
        specs = snap.check(doc, self.pipeline)  # untrusted data: checked before anything is built from it
        trace, pending = snap.restore(doc)
        node, visit = doc["paused_at"], doc["visit"]
        overrides = {name: self.pipeline.override(name, operator=spec["operator"], params=spec["params"])
                     for name, spec in specs.items()}
        turn = Turn(doc["question"], session_id=doc["session_id"], request_id=doc["request_id"], user=doc["user"])
        turn.replay_of = doc.get("replay_of")
        ctx = self.studio.context_for(turn, disabled=frozenset(doc.get("disabled") or ()), overrides=overrides,
                            meta={"resumed_at": node, "replay_of": doc.get("replay_of")},
                            priority=int(doc.get("priority") or 0))
        self.check_pending(node, pending)
        if node == self.pipeline.source.name and visit == 0:
            return self.studio.start_turn(turn, pending, ctx)  # paused before anything ran: start over with it
        value, ctx = self.pipeline.replay_context(trace, inputs={(node, visit): pending}, context=ctx)
        return self.studio.start_turn(turn, value, ctx)

    def snapshot(self, turn: Turn, node: str, visit: int, pending: Any, context: Any) -> dict[str, Any]:
        """``turn``, paused before the ``visit``-th run of ``node``, as JSON (``turn.snapshot()``)."""
        from studio_nb.debug import snapshot as snap

        return snap.dump(turn, node, visit, pending, context)

    # ------------------------------------------------------------------ variants
    def session_variants(self, session_id: str | None = None, user: str | None = None) -> dict[str, Any]:
        """The settings (intent, search, answer mode) and operators a session may switch,
        with what it uses now."""
        return self.studio.variants.describe(session_id, user)

    def set_session_variant(self, *, session_id: str, user: str, setting: str | None = None, value: str | None = None,
                            node: str | None = None, operator: str | None = None) -> dict[str, Any]:
        """Switch a setting (``setting="answer_mode", value="extractive"``) or a node's operator
        (``node="prompt_builder", operator="MyBuilder"``; None: back to the default) for one
        session of ``user``. Returns ``session_variants``."""
        check_session(self.studio.memory, session_id, user, must_exist=False)
        if (setting is None) == (node is None):
            raise ConfigError('say what to switch: setting="answer_mode", value=... or node="...", operator=...')
        if setting is not None:
            return self.studio.variants.set_setting(setting, value, session_id=session_id, user=user)
        return self.studio.variants.set_operator(node, operator, session_id=session_id, user=user)


__all__ = ["Debugger"]
