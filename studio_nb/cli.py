"""The ``studio-nb`` command: chat, ingest, search, route, sessions, pipeline, doctor.

Every subcommand uses the same public APIs as the notebook and the server extension
(``create_studio_pipeline`` and the services), so what works here works there.
``route`` and ``search`` read one query per line from stdin when given ``-`` and print
one JSON object per line, for batch evaluation.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Iterable

from studio_nb.errors import StudioError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DEMO_QUESTION = "What is a ParallelGroup in studio-nb, and why does the Studio pipeline use one?"


def _overrides(args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    overrides = {"data_dir": args.data_dir, **extra}
    if getattr(args, "engine", None):
        overrides["engine"] = args.engine
    if getattr(args, "mode_answer", None):
        overrides["answer_mode"] = args.mode_answer
    return overrides


def _pipeline(args: argparse.Namespace, **extra: Any):
    """The Studio pipeline, built exactly as every other front end builds it."""
    from studio_nb.studio import create_studio_pipeline

    return create_studio_pipeline(args.config, **_overrides(args, **extra))


def _queries(text: str) -> tuple[Iterable[str], bool]:
    if text == "-":
        return (line.strip() for line in sys.stdin if line.strip()), True
    return [text], False


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, default=str))


# ---------------------------------------------------------------------- chat
def _chat_once(pipe: Any, question: str, args: argparse.Namespace, session: str) -> int:
    """Ask, stream the parts to the terminal (or print one JSON line), return an exit code."""
    from studio_nb import present

    turn = pipe.ask(question, session_id=session, domains=args.domain)
    if args.json:
        turn.wait()
        data = present.to_json(turn) if turn.error is None else None
        if data is None:
            raise turn.error
        _print_json(data)
        return 0
    view = turn.view  # the turn's one live view; present renders it
    live = sys.stderr.isatty()  # a terminal gets a live progress line; pipes get only the final text
    for part in turn:
        kind = present.part_kind(part)
        if kind == "evidence":
            evidence_text = present.plain(present.View(question=question, evidence=part), sources=False)
            print(evidence_text.rstrip(present.CURSOR).rstrip() + "\n", flush=True)
        elif kind == "text" and live:
            # the synthesis is checked sentence by sentence once it is complete, so what streams
            # is only progress; the checked text is printed below
            print(f"\r  writing a summary of the evidence… {view.deltas} tokens", end="", file=sys.stderr, flush=True)
        elif kind == "step" and args.verbose and part.status != "running":
            took = f" {part.duration_ms:.0f} ms" if part.duration_ms is not None else ""
            print(f"{chr(13) if live else ''}  · {part.operator} {part.status}{took}", file=sys.stderr)
    if live and view.deltas:
        print("\r" + " " * 60 + "\r", end="", file=sys.stderr, flush=True)
    print(present.plain(view, passages=False))
    if args.verbose:
        print("\n" + present.details_text(view))
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    pipe = _pipeline(args, **({"max_tokens": args.max_tokens} if args.max_tokens else {}))
    try:
        if args.question and args.question != ["-"]:
            return _chat_once(pipe, " ".join(args.question), args, args.session or "cli")
        if pipe.config["answer_mode"] != "extractive":  # (extractive never loads the chat model)
            # several questions: load the models and indexes before the first one, so its answer
            # (and its timings in the JSON lines) are an answer's, not the first load's
            print("warming up ...", file=sys.stderr, flush=True)
            pipe.warm_up(progress=sys.stderr.isatty())
        if args.question == ["-"]:
            return _chat_batch(pipe, args)
        print("studio-nb chat — empty line or Ctrl-D to quit", file=sys.stderr)
        while True:
            try:
                question = input("you> ").strip()
            except EOFError:
                return 0
            if not question:
                return 0
            try:
                _chat_once(pipe, question, args, args.session or "cli")
            except StudioError as exc:
                print(f"error [{exc.code}]: {exc}", file=sys.stderr)
    finally:
        pipe.close()


def _chat_batch(pipe: Any, args: argparse.Namespace) -> int:
    """``chat -``: one question per stdin line, one JSON response per stdout line.

    Each line is a new session unless ``--session`` names one; a failing line prints a
    JSON error record and the batch goes on (the exit code is 1 if any line failed).
    """
    from studio_nb.kernel.context import new_request_id

    failed = 0
    for question, _ in ((q, None) for q in _queries("-")[0]):
        session = args.session or f"cli-batch-{new_request_id()}"
        args_json = argparse.Namespace(**{**vars(args), "json": True})
        try:
            _chat_once(pipe, question, args_json, session)
        except StudioError as exc:
            failed += 1
            _print_json({"question": question, "error": {"code": exc.code, "message": str(exc)}})
    return 1 if failed else 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Fresh-install demo: answer a question about studio-nb from its bundled docs."""
    args.question, args.session, args.json, args.domain = [DEMO_QUESTION], "demo", False, None
    args.verbose = True
    pipe = _pipeline(args, **({"max_tokens": args.max_tokens} if args.max_tokens else {}))
    if pipe.config["llm"].get("backend", "llama_cpp") == "llama_cpp" and pipe.config["answer_mode"] != "extractive":
        from studio_nb import selftest

        print("checking that the chat model generates on this CPU (in a child process) ...", file=sys.stderr)
        check = selftest.run(pipe.config["llm"].get("model_path"))
        print(check.report(), file=sys.stderr)
        if not check.ok:
            return 1
    print(f"warming up (models and the bundled docs index, data in {pipe.config['data_dir']}) ...", file=sys.stderr)
    pipe.warm_up(progress=True)
    print(f"\nQ: {DEMO_QUESTION}\n")
    try:
        return _chat_once(pipe, DEMO_QUESTION, args, "demo")
    finally:
        pipe.close()


# ---------------------------------------------------------------------- knowledge
def cmd_ingest(args: argparse.Namespace) -> int:
    pipe = _pipeline(args, ingest_workers=args.workers)
    report = pipe.ingest(args.path, args.domain, progress=not args.json)
    if args.json:
        from dataclasses import asdict

        _print_json(asdict(report))
    else:
        print(
            f"{report.domain}: {report.files_seen} files ({report.files_changed} changed, "
            f"{report.files_unchanged} unchanged, {report.files_removed} removed), "
            f"+{report.chunks_added}/-{report.chunks_removed} chunks in {report.seconds:.1f} s"
        )
        for err in report.errors:
            print(f"  skipped {err}", file=sys.stderr)
    pipe.close()
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from studio_nb.services.knowledge.types import hit_dict

    pipe = _pipeline(args)
    queries, batch = _queries(args.query)
    for query in queries:
        hits = pipe.search(query, domains=args.domain, k=args.k, mode=args.mode)
        if args.json or batch:
            _print_json({"query": query, "hits": [hit_dict(h) for h in hits]} if batch else [hit_dict(h) for h in hits])
        else:
            for i, h in enumerate(hits, 1):
                snippet = " ".join(h.chunk.text.split())[:160]
                print(f"{i}. [{h.score:.4f}] {h.citation.titled}\n   {snippet}")
    pipe.close()
    return 0


def cmd_route(args: argparse.Namespace) -> int:
    pipe = _pipeline(args, **({"intent_mode": args.mode} if args.mode else {}))
    clf = pipe.resources.intent
    queries, batch = _queries(args.text)
    for text in queries:
        r = clf.classify(text)
        record = {
            "text": text,
            "intent": r.intent.value,
            "confidence": round(float(r.confidence), 4),
            "domains": list(r.domains),
            "matched_keywords": list(r.matched_keywords),
            "mode": r.mode,
        }
        if args.json or batch:
            _print_json(record)
        else:
            print(f"{record['intent']} ({record['confidence']:.2f}) domains={record['domains']}")
    pipe.close()
    return 0


# ---------------------------------------------------------------------- sessions & pipeline
def cmd_sessions(args: argparse.Namespace) -> int:
    sessions = _pipeline(args).memory.sessions()
    if args.json:
        from dataclasses import asdict

        _print_json([asdict(s) for s in sessions])
    else:
        for s in sessions:
            print(f"{s.session_id}\t{s.turns} turns\t{s.user}\t{s.title}")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    print(_pipeline(args).memory.export(args.session, fmt=args.format))
    return 0


def cmd_pipeline(args: argparse.Namespace) -> int:
    pipe = _pipeline(args)
    if args.mermaid:
        print(pipe.pipeline.draw().mermaid)
    elif args.yaml:
        print(pipe.pipeline.to_yaml())
    else:
        print(pipe.pipeline)
        print()
        print(pipe.pipeline.to_yaml())
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from studio_nb.config import load_config
    from studio_nb.doctor import run_checks

    return run_checks(load_config(args.config, **_overrides(args)))


def cmd_serve(args: argparse.Namespace) -> int:
    from jupyter_ext.launch import main as launch

    return launch(args.rest) or 0


def cmd_events(args: argparse.Namespace) -> int:
    """``studio-nb events [--follow]``: print recent step events, then (with --follow) new ones.

    The Redis URL and stream come from ``--url``/``--stream``, else from the config's
    ``telemetry.event_bus`` (the one the server extension publishes to), else the default.
    """
    from studio_nb.config import load_config
    from studio_nb.services.eventbus import follow, format_event, recent
    from studio_nb.telemetry import event_bus_settings

    bus = event_bus_settings(load_config(args.config).get("telemetry"))
    url, stream = args.url or bus["url"], args.stream or bus["stream"]
    show = (lambda ev: json.dumps(ev, ensure_ascii=False)) if args.json else format_event
    start = args.from_id or "$"
    try:
        if args.from_id is None and args.count > 0:
            start = "0"  # nothing recent: the stream is empty, so follow it from its start (no gap)
            for ev in recent(url, stream, args.count):
                print(show(ev), flush=True)
                start = ev["id"]  # follow on from the last one printed: nothing falls in between
        if args.follow:
            for ev in follow(url, stream, start):
                print(show(ev), flush=True)
    except KeyboardInterrupt:
        return 0
    except StudioError:
        raise
    except Exception as exc:  # redis.ConnectionError and friends
        print(f"error: cannot read events from {url} stream {stream!r}: {exc}", file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="studio-nb", description="SAGE Studio, Jupyter-first: a local research/coding assistant")
    p.add_argument("--data-dir", help="where indexes and memory live (default: $STUDIO_NB_DATA_DIR or ~/.studio_nb)")
    p.add_argument("--config", help="a YAML file of Studio settings (see studio_nb/config.py)")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser(
        "chat", help="ask a question (streams); '-' reads one question per line and prints JSON lines; "
        "without one, an interactive loop")
    c.add_argument("question", nargs="*")
    c.add_argument("-s", "--session", help="session id (default: 'cli'; with '-', a new session per line)")
    c.add_argument("-d", "--domain", action="append", help="search only this knowledge domain (repeatable)")
    c.add_argument("-v", "--verbose", action="store_true", help="show steps, intent, sources and timings")
    c.add_argument("--json", action="store_true", help="print the response record as JSON")
    c.add_argument("--max-tokens", type=int)
    c.add_argument("--engine", choices=["local", "ray"])
    c.add_argument("--answer-mode", dest="mode_answer", choices=["grounded", "extractive", "generative"],
                   help="grounded (evidence + checked synthesis, default), extractive (no model), generative")
    c.set_defaults(func=cmd_chat)

    d = sub.add_parser("demo", help="answer a sample question on the embedded defaults")
    d.add_argument("--max-tokens", type=int)
    d.add_argument("--engine", choices=["local", "ray"])
    d.add_argument("--answer-mode", dest="mode_answer", choices=["grounded", "extractive", "generative"])
    d.set_defaults(func=cmd_demo)

    i = sub.add_parser("ingest", help="add files or a folder to a knowledge domain")
    i.add_argument("path")
    i.add_argument("--domain", required=True)
    i.add_argument("--json", action="store_true")
    i.add_argument("--engine", choices=["local", "ray"],
                   help="ray: split and embed on a Ray cluster's workers (config ray.address; default a local one)")
    i.add_argument("--workers", type=int, help="with --engine ray: how many Ray workers (default: one per CPU)")
    i.set_defaults(func=cmd_ingest)

    s = sub.add_parser("search", help="search the knowledge base ('-' reads queries from stdin)")
    s.add_argument("query")
    s.add_argument("-d", "--domain", action="append")
    s.add_argument("-k", "--k", type=int, default=5)
    s.add_argument("--mode", choices=["hybrid", "dense", "lexical"], default="hybrid")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_search)

    r = sub.add_parser("route", help="classify a message's intent ('-' reads messages from stdin)")
    r.add_argument("text")
    r.add_argument("--mode", choices=["keyword", "embedding", "llm", "hybrid"])
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_route)

    ss = sub.add_parser("sessions", help="list conversations")
    ss.add_argument("--json", action="store_true")
    ss.set_defaults(func=cmd_sessions)

    h = sub.add_parser("history", help="print a conversation")
    h.add_argument("session")
    h.add_argument("--format", choices=["markdown", "json"], default="markdown")
    h.set_defaults(func=cmd_history)

    pl = sub.add_parser("pipeline", help="print the Studio pipeline graph and YAML")
    pl.add_argument("--yaml", action="store_true")
    pl.add_argument("--mermaid", action="store_true")
    pl.set_defaults(func=cmd_pipeline)

    doc = sub.add_parser("doctor", help="check models and dependencies, say how to fix what is missing")
    doc.set_defaults(func=cmd_doctor)

    sv = sub.add_parser("serve", help="start JupyterLab with the Studio page on 127.0.0.1")
    sv.add_argument("rest", nargs=argparse.REMAINDER, help="arguments passed on to Jupyter")
    sv.set_defaults(func=cmd_serve)

    ev = sub.add_parser("events", help="print (and with --follow, keep printing) step events from the Redis event bus")
    ev.add_argument("--url", help="Redis URL (default: the config's telemetry.event_bus, else redis://127.0.0.1:6379/0)")
    ev.add_argument("--stream", help="stream key (default: the config's, else studio_nb:events)")
    ev.add_argument("--follow", "-f", action="store_true", help="keep printing new events (Ctrl-C stops)")
    ev.add_argument("--from-id", default=None, help="with --follow: start after this id ('0' = oldest kept)")
    ev.add_argument("--count", "-n", type=int, default=20, help="how many recent events to print first")
    ev.add_argument("--json", action="store_true", help="print raw JSON lines")
    ev.set_defaults(func=cmd_events)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except StudioError as exc:
        print(f"error [{exc.code}]: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
