"""Slash commands of a chat, answered by the pipeline's own operations.

    cmds = ChatCommands(pipe, user="alice", session_id="notes.chat", workspace="/home/alice")
    cmds.run("/learn papers")          # ingest ~/papers into alice's private domain "papers"
    cmds.run("/mode extractive")       # this session answers with evidence only
    cmds.hint("please rebuild the index")   # "use /learn PATH ..." (None: not a command request)

Every chat front end (JupyterLab's chat member, and anything else that reads typed text)
sends a message here first: ``is_command(text)`` says whether it is one, ``run`` answers it
with Markdown, and ``hint`` tells a user who asked in plain words which command does it —
studio-nb never deletes or re-indexes anything because a sentence looked like a request.

Commands act for one user in one session, with the same rules as the REST API: ``/learn``
reads only under the user's workspace and creates a domain private to the user; ``/forget``
removes only a domain the user may write; ``/mode`` is a per-session variant; ``/sources``
lists the domains the user may read.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from studio_nb.errors import ConfigError, ForbiddenError, PathEscapeError, StudioError

#: the answer modes ``/mode`` switches between (the ``answer_mode`` session setting)
MODES = ("grounded", "extractive", "generative")

HELP = """\
**Commands**

| command | what it does |
|---|---|
| `/learn PATH` | add a file or folder under your workspace to the knowledge base (a domain private to you, named after it) |
| `/forget DOMAIN` | remove one of your knowledge domains |
| `/sources` | what is in the knowledge base you can read, and what the last answer cited |
| `/mode grounded\\|extractive\\|generative` | how this chat answers: evidence + checked synthesis, evidence only, or the model from whole passages |
| `/trace` | the last turn's operators and their timings |
| `/stop` | stop the answer being written |
| `/help` | this list |

Anything else is a question: the answer shows its evidence first, each passage cited."""

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Command:
    name: str
    arg: str


_COMMAND = re.compile(r"^\s*/([a-z]+)\b\s*(.*?)\s*$", re.DOTALL)
NAMES = ("learn", "forget", "sources", "mode", "trace", "stop", "help")

# plain-word requests for what a command does -> (the command, how to use it)
_HINTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(re-?build|re-?index|refresh|update)\b.*\b(index|knowledge( base)?|kb)\b|\bre-?index\b", re.I),
     "`/learn PATH` (re)indexes a file or folder under your workspace; only changed files are read again"),
    (re.compile(r"\b(ingest|index|learn|add|import|load)\b.*\b(folder|directory|file|docs?|papers?|notes?)\b"
                r"|\b(ingest|index)\b\s+\S+", re.I),
     "`/learn PATH` adds a file or folder under your workspace to the knowledge base"),
    (re.compile(r"\b(delete|remove|forget|drop|erase)\b.*\b(my|the|this|that)\b\s+\S+", re.I),
     "`/forget DOMAIN` removes one of your knowledge domains (`/sources` lists them); "
     "studio-nb deletes nothing on a plain-words request"),
    (re.compile(r"\b(switch|change|set|use)\b.*\b(grounded|extractive|generative)\b(\s+mode)?", re.I),
     "`/mode grounded|extractive|generative` switches how this chat answers"),
    (re.compile(r"\b(what|which)\b.*\b(sources|domains|documents)\b.*\b(have|know|indexed|there)\b", re.I),
     "`/sources` lists the knowledge domains you can read and what the last answer cited"),
    (re.compile(r"\b(show|see)\b.*\b(trace|timings?)\b", re.I),
     "`/trace` shows the last turn's operators and their timings"),
)


def parse(text: str) -> Command | None:
    """The command in ``text`` (a message that starts with ``/name``), else None."""
    m = _COMMAND.match(text or "")
    if m is None:
        return None
    return Command(m.group(1), m.group(2))


def is_command(text: str) -> bool:
    return parse(text) is not None


def hint(text: str) -> str | None:
    """For a plain-words request a command does ("rebuild the index", "delete my data.csv"):
    a line naming that command. None for anything else (a question is answered as usual)."""
    if is_command(text):
        return None
    for pattern, line in _HINTS:
        if pattern.search(text or ""):
            return f"Did you mean a command? {line}. Type `/help` for all commands."
    return None


def domain_name(path: Path) -> str:
    """The knowledge domain ``/learn PATH`` fills: the file or folder name, made a valid name."""
    stem = path.name if path.is_dir() else path.stem
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._-")[:64]
    return name or "notes"


def confine(workspace: str | os.PathLike[str], path: str) -> Path:
    """``path`` (relative to ``workspace``, or absolute inside it) resolved, or PathEscapeError.

    Links are resolved first, so a link that leads out of the workspace is refused too.
    """
    if not path:
        raise ConfigError("say what to learn: `/learn PATH` (a file or folder under your workspace)")
    root = Path(workspace).expanduser().resolve()
    target = Path(os.path.expanduser(path))
    target = (target if target.is_absolute() else root / target).resolve()
    if target != root and root not in target.parents:
        raise PathEscapeError(f"{path!r} is outside your workspace ({root}); `/learn` reads only files under it")
    if not target.exists():
        raise ConfigError(f"no file or folder {path!r} in your workspace ({root})")
    return target


class ChatCommands:
    """The slash commands of one user's chat session (see the module docstring).

    ``stop`` is the front end's way to stop the answer it is writing (``/stop``); a front
    end without one answers that nothing is running.
    """

    def __init__(self, pipe: Any, *, user: str | None, session_id: str, workspace: str | os.PathLike[str],
                 stop: Callable[[], bool] | None = None) -> None:
        self.pipe = pipe
        self.user = user
        self.session_id = session_id
        self.workspace = workspace
        self._stop_turn = stop

    # ------------------------------------------------------------------ dispatch
    def run(self, text: str, progress: Progress | None = None) -> str:
        """Answer the command in ``text`` as Markdown; a bad one gets a line saying the fix.

        ``progress`` receives one line per ingest stage while ``/learn`` runs.
        """
        cmd = parse(text)
        if cmd is None:
            raise ConfigError(f"not a command: {text[:40]!r}; commands start with '/', e.g. /help")
        if cmd.name not in NAMES:
            return f"Unknown command `/{cmd.name}`. Commands: {', '.join('/' + n for n in NAMES)}."
        try:
            return getattr(self, f"_{cmd.name}")(cmd.arg, progress)
        except StudioError as exc:
            return f"**/{cmd.name} failed** (`{exc.code}`): {exc}"

    # ------------------------------------------------------------------ commands
    def _help(self, arg: str, progress: Progress | None) -> str:
        return HELP

    def _learn(self, arg: str, progress: Progress | None) -> str:
        from studio_nb.services.knowledge.limits import IngestControl

        words = arg.split()
        domain = None
        if len(words) >= 3 and words[-2] == "--domain":
            domain, arg = words[-1], " ".join(words[:-2])
        target = confine(self.workspace, arg.strip().strip("'\""))
        domain = domain or domain_name(target)
        last = {"stage": ""}

        def report(stage: str, done: int, total: int) -> None:
            if progress is not None and (stage != last["stage"] or done == total):
                last["stage"] = stage
                progress(f"/learn {target.name}: {stage} {done}/{total}")

        report_ = self.pipe.ingest(str(target), domain, progress=False, user=self.user,
                                   control=IngestControl(on_progress=report))
        get = (lambda k: report_.get(k)) if isinstance(report_, dict) else (lambda k: getattr(report_, k, None))
        errors = list(get("errors") or ())
        lines = [f"Learned **{target.name}** into domain `{domain}`"
                 + (" (private to you)" if self.user is not None else "") + ": "
                 f"{get('files_seen')} file(s) seen, {get('files_changed')} changed, "
                 f"{get('chunks_added')} chunk(s) added, {get('chunks_removed')} removed."]
        if errors:
            lines.append(f"{len(errors)} file(s) skipped: " + "; ".join(str(e) for e in errors[:5]))
        lines.append(f"Ask about it now; `/forget {domain}` removes it.")
        return "\n\n".join(lines)

    def _forget(self, arg: str, progress: Progress | None) -> str:
        name = arg.strip()
        if not name:
            raise ConfigError("say which domain: `/forget DOMAIN` (`/sources` lists yours)")
        try:
            removed = self.pipe.knowledge.remove_domain(name, self.user)
        except ForbiddenError:
            return f"`{name}` is shared or another user's; you can only forget your own domains."
        if not removed:
            return f"There is no domain `{name}` you can see; `/sources` lists them."
        return f"Forgot domain `{name}`: its files are no longer searched."

    def _sources(self, arg: str, progress: Progress | None) -> str:
        rows = [f"| `{d.name}` | {'yours' if getattr(d, 'owner', '') else 'shared'} | {d.files} | {d.chunks} |"
                for d in self.pipe.knowledge.domains(self.user)]
        out = ["**Knowledge you can read**\n\n| domain | | files | chunks |\n|---|---|---:|---:|\n" + "\n".join(rows)
               if rows else "The knowledge base is empty; `/learn PATH` adds files."]
        turn = self._last_turn()
        resp = getattr(turn, "_response", None) if turn is not None else None
        evidence = getattr(resp, "evidence", None) if resp is not None else None
        if evidence is not None and evidence.pieces:
            cited = "\n".join(f"{p.n}. `{p.ref}`" for p in evidence.pieces)
            out.append(f"**The last answer cited**\n\n{cited}")
        elif turn is not None:
            out.append("The last answer cited nothing.")
        return "\n\n".join(out)

    def _mode(self, arg: str, progress: Progress | None) -> str:
        mode = arg.strip()
        if mode not in MODES:
            current = self.pipe.session_variants(self.session_id, self.user)
            value = next((s["value"] for s in current["settings"] if s["name"] == "answer_mode"), "grounded")
            return f"This chat answers in `{value}` mode. Switch with `/mode {'|'.join(MODES)}`."
        self.pipe.set_session_variant(session_id=self.session_id, user=self.user or "local",
                                      setting="answer_mode", value=mode)
        return f"This chat now answers in `{mode}` mode."

    def _trace(self, arg: str, progress: Progress | None) -> str:
        from studio_nb import present

        turn = self._last_turn()
        if turn is None:
            return "No turn yet in this chat: ask something first."
        trace = turn.trace
        rows = []
        if trace is not None:
            for op, (ms, reused) in trace.timings().items():
                rows.append(f"| `{op}` | {'reused' if reused else 'ran'} | {ms:.0f} ms |")
        if not rows:
            return present.markdown(turn, steps=True, timings=True)
        return (f"**Trace of** _{turn.question[:80]}_\n\n| operator | run | took |\n|---|---|---:|\n"
                + "\n".join(rows))

    def _stop(self, arg: str, progress: Progress | None) -> str:
        if self._stop_turn is not None and self._stop_turn():
            return "Stopped the answer."
        return "Nothing is being answered in this chat."

    # ------------------------------------------------------------------ helpers
    def _last_turn(self) -> Any:
        try:
            return self.pipe.past_turn(session_id=self.session_id, user=self.user)
        except StudioError:
            return None


__all__ = ["ChatCommands", "Command", "HELP", "MODES", "NAMES", "confine", "domain_name", "hint", "is_command",
           "parse"]
