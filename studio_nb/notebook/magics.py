"""``%sage_chat`` / ``%%sage_chat``: chat with the Studio pipeline from a cell.

    %sage_chat what is a ParallelGroup?
    %sage_chat -s review -f code write a function that reverses a list
    %%sage_chat -v
    why did my cell fail? {Err}

The answer streams into the cell output (one display updated in place, at most
``updates_per_second`` times a second) and is kept as ``sage_last`` (a ``Response``) in
the user namespace. ``{name}`` fields are filled from the user namespace (see
``interpolate``). The first word may be a subcommand instead of a question:
``reset``, ``history``, ``sessions``, ``pipeline``, ``ingest PATH [--domain D]``, ``help``.

The magic only uses the Studio pipeline's public API, through the kernel's one shared
pipeline (``kernel_pipe``), created on first use from the traits below, so that
``%load_ext studio_nb`` itself loads nothing heavy.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display
from traitlets import Bool, Dict, Float, Unicode

from studio_nb.errors import StudioError, UnknownSessionError
from studio_nb.notebook.context import current_cell, explain_error_request, insert_code
from studio_nb.notebook.interpolate import interpolate, prompt_namespace
from studio_nb.notebook.kernel_pipe import kernel_pipeline
from studio_nb import present
from studio_nb.notebook.throttle import Throttle

FORMATS = ("markdown", "text", "code", "json")
_FLAGS = {"-v", "--verbose", "--no-stream", "--raw", "--explain-error", "--code", "-i", "--insert"}
_VALUED = {"-s", "--session", "-d", "--domain", "-f", "--format"}
_CODE_BLOCK = re.compile(r"```[^\n`]*\n(.*?)(?:```|\Z)", re.DOTALL)
CURSOR = present.CURSOR

HELP = """\
%sage_chat QUESTION            ask; the answer streams into the output
%%sage_chat [options]          the cell body is the question
options: -s/--session ID  -d/--domain D (repeatable)  -f/--format markdown|text|code|json
         --no-stream  -v/--verbose (per-operator trace)  --raw (no {var} interpolation)
         --explain-error   ask about the last traceback; the failing cell is attached, cited In[N]
         --code (cell magic)  the cell body is code attached as context; the line is the question
         -i/--insert       put the answer's code block into a new cell below
{name}, {In[-2]}, {Out[3]}, {Err} are filled from your namespace ({Err}: last traceback)
subcommands:
  %sage_chat reset               clear the session's memory
  %sage_chat history             the session's turns
  %sage_chat sessions            your sessions
  %sage_chat pipeline            draw the Studio pipeline
  %sage_chat ingest PATH [--domain D]   add files to the knowledge base
  %sage_chat -s ID               switch the default session
  %sage_chat help                this text
the last answer is kept as `sage_last` (a Response: .text .evidence .synthesis .dropped .sources
.timings .to_dict())"""


def split_options(line: str) -> tuple[list[str], str]:
    """Split leading options from the question, keeping the question's text as typed.

    The question is free text (apostrophes, quotes, dashes), so it must not go through a
    shell-like splitter; only the option tokens in front of it do.
    """
    opts: list[str] = []
    tokens = list(re.finditer(r"\S+", line))
    i = 0
    while i < len(tokens):
        tok = tokens[i].group()
        if tok == "--":  # everything after `--` is the question, even if it looks like an option
            i += 1
            break
        if tok in _FLAGS or (tok.split("=", 1)[0] in _VALUED and "=" in tok):
            opts.append(tok)
            i += 1
        elif tok in _VALUED and i + 1 < len(tokens):
            opts += [tok, tokens[i + 1].group()]
            i += 2
        else:
            break
    rest = line[tokens[i].start() :] if i < len(tokens) else ""
    return opts, rest.strip()


def extract_code(text: str) -> str:
    """The fenced code blocks of an answer, joined; the answer as comments if it has none."""
    blocks = [b.strip("\n") for b in _CODE_BLOCK.findall(text) if b.strip()]
    if blocks:
        return "\n\n".join(blocks)
    return "\n".join(f"# {line}".rstrip() for line in text.strip().splitlines())


_LINE_MAGIC = re.compile(r"^(\s*)%sage_chat(?:\s+(.*?))?\s*$")


def keep_question_marks(lines: list[str]) -> list[str]:
    """An IPython input transformer: ``%sage_chat what is X?`` asks, it does not open help.

    IPython reads any line ending in ``?`` as a help request (``obj?``), which would turn
    most questions into "Object not found". Registered in ``input_transformers_cleanup``,
    this rewrites such lines into the ``run_line_magic`` call IPython would have made.
    """
    if lines and lines[0].lstrip().startswith("%%"):  # a cell magic's body is not Python
        return lines
    out = []
    for line in lines:
        m = _LINE_MAGIC.match(line)
        if m and line.rstrip().endswith("?"):
            newline = "\n" if line.endswith("\n") else ""
            line = f"{m.group(1)}get_ipython().run_line_magic('sage_chat', {m.group(2) or ''!r}){newline}"
        out.append(line)
    return out


def _is_subcommand(words: list[str]) -> bool:
    if not words:
        return False
    head, n = words[0], len(words)
    if head in ("help", "reset", "sessions", "pipeline", "history"):
        return n == 1
    if head == "ingest":
        return n == 2 or (n == 4 and words[2] == "--domain")
    return False


@magics_class
class StudioMagics(Magics):
    """The ``%sage_chat`` magic; configure with ``%config StudioMagics.<trait> = ...``."""

    pipeline_config = Unicode(
        "", help="Path to a Studio YAML config (default: $STUDIO_NB_CONFIG, then the embedded defaults)."
    ).tag(config=True)
    overrides = Dict(
        help="Keyword overrides for create_studio_pipeline, e.g. {'data_dir': '/tmp/studio'}."
    ).tag(config=True)
    user = Unicode("local", help="The user every turn is recorded under.").tag(config=True)
    session = Unicode("default", help="The session used when -s is not given.").tag(config=True)
    updates_per_second = Float(10.0, help="At most this many output redraws per second while streaming.").tag(
        config=True
    )
    verbose = Bool(False, help="Always show the per-operator steps (as with -v).").tag(config=True)

    _warmed: Any = None  # the pipeline this magic has warmed up (with progress bars)

    @property
    def pipe(self) -> Any:
        """The kernel's Studio pipeline (created on first use)."""
        return kernel_pipeline(self.pipeline_config or None, self.overrides)

    # ------------------------------------------------------------------ the magic
    @magic_arguments()
    @argument("-s", "--session", help="session id (default: StudioMagics.session)")
    @argument(
        "-d", "--domain", action="append", help="restrict retrieval to this knowledge domain (repeatable)"
    )
    @argument("-f", "--format", choices=FORMATS, default="markdown", help="how to show the answer")
    @argument("--no-stream", action="store_true", help="show the answer only when it is complete")
    @argument("-v", "--verbose", action="store_true", help="show the per-operator steps with timings")
    @argument("--raw", action="store_true", help="send the text as is, without {var} interpolation")
    @argument("--explain-error", action="store_true",
              help="ask about the last traceback, with the failing cell's code attached")
    @argument("--code", action="store_true", help="%%%%sage_chat only: the cell body is code to ask about")
    @argument("-i", "--insert", action="store_true", help="insert the answer's code block as a new cell below")
    @argument("text", nargs="*", help="the question, or a subcommand (see `%%sage_chat help`)")
    @no_var_expand  # IPython would eval `{expr}` / `$name` in the line; we interpolate safely ourselves
    @line_cell_magic
    def sage_chat(self, line: str = "", cell: str | None = None) -> None:
        """Chat with the Studio pipeline; `%sage_chat help` lists options and subcommands."""
        opts, rest = split_options(line)
        args = parse_argstring(self.sage_chat, " ".join(opts))
        session = args.session or self.session
        if cell is None and _is_subcommand(rest.split()) and not args.explain_error:
            return self._subcommand(rest.split(), session)
        if args.explain_error:
            return self._explain_error(rest, session, args)
        attachments: tuple[Any, ...] = ()
        if args.code:
            if cell is None or not cell.strip():
                raise UsageError("--code takes the cell's code: use it as `%%sage_chat --code QUESTION`")
            attachments, cell = (current_cell(self.shell, cell),), None
            rest = rest or "What does this code do, and is anything wrong with it?"
        question = "\n".join(part for part in (rest, cell or "") if part.strip()).strip()
        if not question:
            if args.session:
                self.session = args.session
                print(f"default session is now {self.session!r}")
                return None
            raise UsageError("nothing to ask: `%sage_chat QUESTION` (or `%sage_chat help`)")
        if not args.raw:
            question = interpolate(question, prompt_namespace(self.shell.user_ns))
        self._ask(question, session, args, attachments=attachments)
        return None

    def _explain_error(self, extra: str, session: str, args: Any) -> None:
        request = explain_error_request(self.shell, extra)
        if request is None:
            raise UsageError("no error to explain yet: run the failing cell first, then `%sage_chat --explain-error`")
        self._ask(request.question, session, args, attachments=request.attachments, search=request.search)

    # ------------------------------------------------------------------ asking
    def _ask(self, question: str, session: str, args: Any, *, attachments: tuple[Any, ...] = (),
             search: str = "") -> None:
        pipe = self.pipe
        if pipe is not self._warmed:  # first question: load models with progress bars, not silently
            pipe.warm_up(progress=True)  # idempotent, and quick when already warm
            self._warmed = pipe
        fmt, verbose = args.format, args.verbose or self.verbose
        live = not args.no_stream and fmt != "json"
        throttle = Throttle(self.updates_per_second)
        domains = tuple(d for ds in args.domain for d in ds.split(",") if d) if args.domain else None
        turn = pipe.ask(question, session_id=session, user=self.user, domains=domains,
                        attachments=attachments, search=search)
        view = turn.view  # the turn's one live view: the parts below only say when to redraw
        handle = display(_bundle(view, fmt, verbose), raw=True, display_id=True) if live else None
        try:
            for part in turn:
                kind = present.part_kind(part)
                redraw = kind in ("text", "evidence") or (verbose and kind == "step")
                if handle is not None and redraw and (kind == "evidence" or throttle.ready()):
                    handle.update(_bundle(view, fmt, verbose), raw=True)
        except StudioError as exc:
            if handle is not None:
                handle.update(_bundle(view, fmt, verbose), raw=True)
            raise UsageError(f"[{exc.code}] {exc}") from None
        except KeyboardInterrupt:
            turn.stop()
            if handle is not None:
                handle.update(_bundle(view, fmt, verbose), raw=True)
            raise
        resp = turn.response
        self.shell.user_ns["sage_last"] = resp
        final = _bundle(view, fmt, verbose)
        if handle is not None:
            handle.update(final, raw=True)
        else:
            display(final, raw=True)
        if fmt == "code":
            self.shell.set_next_input(extract_code(resp.text), replace=False)
        elif getattr(args, "insert", False) and not insert_code(self.shell, resp.text):
            print("(the answer has no code block to insert)")

    # ------------------------------------------------------------------ subcommands
    def _subcommand(self, words: list[str], session: str) -> None:
        head = words[0]
        if head == "help":
            print(HELP)
        elif head == "reset":
            try:  # only this magic's user's session: studio_nb.access is the one rule
                n = self.pipe.memory.clear(session, user=self.user)
            except UnknownSessionError:  # missing or another user's: the same answer
                n = 0
            print(f"cleared {n} turn(s) of session {session!r}")
        elif head == "history":
            try:
                text = self.pipe.memory.export(session, "markdown", user=self.user)
            except (UnknownSessionError, StopIteration):
                print(f"session {session!r} has no turns yet")
                return
            display({"text/markdown": text, "text/plain": text}, raw=True)
        elif head == "sessions":
            self._show_sessions(session)
        elif head == "pipeline":
            display(self.pipe.pipeline)
        else:  # ingest PATH [--domain D]
            path = Path(os.path.expanduser(words[1]))
            domain = words[3] if len(words) == 4 else path.resolve().name
            try:
                report = self.pipe.ingest(str(path), domain, progress=True)
            except StudioError as exc:
                raise UsageError(f"[{exc.code}] {exc}") from None
            print(_ingest_summary(report))

    def _show_sessions(self, current: str) -> None:
        infos = self.pipe.memory.sessions(self.user)
        if not infos:
            print(f"no sessions yet for user {self.user!r}")
            return
        rows = [
            f"| {'▶ ' if s.session_id == current else ''}`{s.session_id}` | {s.title} | {s.turns} |"
            for s in infos
        ]
        md = "| session | title | turns |\n|---|---|---:|\n" + "\n".join(rows)
        plain = "\n".join(
            f"{'*' if s.session_id == current else ' '} {s.session_id}  ({s.turns} turns)  {s.title}"
            for s in infos
        )
        display({"text/markdown": md, "text/plain": plain}, raw=True)


def _ingest_summary(report: Any) -> str:
    get = (lambda k: report.get(k)) if isinstance(report, dict) else (lambda k: getattr(report, k, None))
    parts = [f"domain {get('domain')!r}"]
    for key in ("files_seen", "files_changed", "chunks_added", "chunks_removed"):
        if get(key) is not None:
            parts.append(f"{key.replace('_', ' ')}: {get(key)}")
    errors = get("errors") or ()
    text = "ingested " + ", ".join(parts)
    if errors:
        text += f"\n{len(errors)} file(s) skipped:\n" + "\n".join(f"  {e}" for e in errors)
    return text


def _bundle(view: Any, fmt: str, verbose: bool) -> dict[str, Any]:
    """The mime bundle for the turn as it stands (partial while streaming, else final)."""
    if fmt == "json":
        data = present.to_json(view)
        return {"application/json": data, "text/plain": json.dumps(data, ensure_ascii=False, indent=2)}
    plain = present.plain(view)
    if verbose and view.steps:
        plain += "\n\n" + present.steps_text(view)
    if fmt == "text":
        return {"text/plain": plain}
    return {"text/markdown": present.markdown(view, steps=verbose), "text/plain": plain}
