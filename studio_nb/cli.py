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


def _config(args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    from studio_nb.config import load_config

    overrides = {"data_dir": args.data_dir, **extra}
    if getattr(args, "engine", None):
        overrides["engine"] = args.engine
    return load_config(args.config, **overrides)


def _pipeline(args: argparse.Namespace, **extra: Any):
    from studio_nb.studio import StudioPipeline, build_pipeline

    cfg = _config(args, **extra)
    return StudioPipeline(build_pipeline(cfg), cfg)


def _queries(text: str) -> tuple[Iterable[str], bool]:
    if text == "-":
        return (line.strip() for line in sys.stdin if line.strip()), True
    return [text], False


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, default=str))


# ---------------------------------------------------------------------- chat
def _chat_once(pipe: Any, question: str, args: argparse.Namespace) -> int:
    from studio_nb.kernel import StepEvent
    from studio_nb.messages import Response, TextDelta

    response = None
    streaming = not args.json
    for ev in pipe.stream(question, session_id=args.session, events=args.verbose, domains=args.domain):
        if isinstance(ev, TextDelta) and streaming:
            if ev.restart:
                print("\n[guardrail: answer rejected, generating again]")
            print(ev.content, end="", flush=True)
        elif isinstance(ev, StepEvent) and args.verbose and not args.json:
            if ev.status != "running":
                took = f" {ev.duration_ms:.0f} ms" if ev.duration_ms is not None else ""
                print(f"  · {ev.operator} {ev.status}{took}", file=sys.stderr)
        elif isinstance(ev, Response):
            response = ev
    if args.json:
        _print_json(response.to_dict())
        return 0
    print()
    if response.sources:
        print("\nSources:")
        for i, s in enumerate(response.sources, 1):
            print(f"  [{i}] {s.ref}")
    if response.tool_calls:
        print("\nTools:")
        for t in response.tool_calls:
            print(f"  {t.name}({json.dumps(t.arguments, ensure_ascii=False)}) -> {t.error or t.result}")
    if args.verbose:
        print(f"\nintent {response.intent} (confidence {response.confidence:.2f}), domains {list(response.domains)}")
        print(f"tokens: prompt {response.usage.prompt_tokens}, answer {response.usage.completion_tokens}")
        print("timings (ms): " + ", ".join(f"{k} {v:.0f}" for k, v in response.timings.items()))
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    pipe = _pipeline(args, **({"max_tokens": args.max_tokens} if args.max_tokens else {}))
    if args.question:
        return _chat_once(pipe, " ".join(args.question), args)
    print("studio-nb chat — empty line or Ctrl-D to quit", file=sys.stderr)
    while True:
        try:
            question = input("you> ").strip()
        except EOFError:
            return 0
        if not question:
            return 0
        try:
            _chat_once(pipe, question, args)
        except StudioError as exc:
            print(f"error [{exc.code}]: {exc}", file=sys.stderr)


def cmd_demo(args: argparse.Namespace) -> int:
    """Fresh-install demo: answer a question about studio-nb from its bundled docs."""
    args.question, args.session, args.json, args.domain = [DEMO_QUESTION], "demo", False, None
    args.verbose = True
    args.max_tokens = args.max_tokens or 160
    pipe = _pipeline(args, max_tokens=args.max_tokens)
    print(f"warming up (models and the bundled docs index, data in {pipe.config['data_dir']}) ...", file=sys.stderr)
    pipe.warm_up(progress=True)
    print(f"\nQ: {DEMO_QUESTION}\nA: ", end="", flush=True)
    return _chat_once(pipe, DEMO_QUESTION, args)


# ---------------------------------------------------------------------- knowledge
def cmd_ingest(args: argparse.Namespace) -> int:
    from studio_nb.services import shared

    cfg = _config(args)
    km = shared.knowledge_manager(cfg["data_dir"], cfg["embedding_model"])
    report = km.ingest(args.path, args.domain, progress=not args.json)
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
    return 0


def _hit_dict(hit: Any) -> dict[str, Any]:
    c = hit.chunk
    return {
        "domain": c.domain,
        "source": c.source,
        "heading": c.heading,
        "start_line": c.start_line,
        "end_line": c.end_line,
        "ref": hit.ref,
        "score": round(hit.score, 5),
        "dense_score": hit.dense_score,
        "lexical_score": hit.lexical_score,
        "text": c.text,
    }


def cmd_search(args: argparse.Namespace) -> int:
    from studio_nb.services import shared

    cfg = _config(args)
    km = shared.knowledge_manager(cfg["data_dir"], cfg["embedding_model"])
    km.warm_up()
    queries, batch = _queries(args.query)
    for query in queries:
        hits = km.search(query, domains=args.domain, k=args.k, mode=args.mode)
        if args.json or batch:
            _print_json({"query": query, "hits": [_hit_dict(h) for h in hits]} if batch else [_hit_dict(h) for h in hits])
        else:
            for i, h in enumerate(hits, 1):
                snippet = " ".join(h.chunk.text.split())[:160]
                print(f"{i}. [{h.score:.4f}] {h.chunk.domain}/{h.ref}\n   {snippet}")
    return 0


def cmd_route(args: argparse.Namespace) -> int:
    from studio_nb.services import shared

    cfg = _config(args)
    clf = shared.intent_classifier(args.mode or cfg["intent_mode"], cfg["embedding_model"], cfg["intent_llm"])
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
    return 0


# ---------------------------------------------------------------------- sessions & pipeline
def cmd_sessions(args: argparse.Namespace) -> int:
    from studio_nb.services import shared

    cfg = _config(args)
    store = shared.memory_store(cfg["data_dir"], cfg["memory_window"], cfg["memory_recall_k"], cfg["embedding_model"])
    sessions = store.sessions()
    if args.json:
        from dataclasses import asdict

        _print_json([asdict(s) for s in sessions])
    else:
        for s in sessions:
            print(f"{s.session_id}\t{s.turns} turns\t{s.user}\t{s.title}")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from studio_nb.services import shared

    cfg = _config(args)
    store = shared.memory_store(cfg["data_dir"], cfg["memory_window"], cfg["memory_recall_k"], cfg["embedding_model"])
    print(store.export(args.session, fmt=args.format))
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
    from studio_nb.doctor import run_checks

    return run_checks(_config(args))


def cmd_serve(args: argparse.Namespace) -> int:
    from jupyter_ext.launch import main as launch

    return launch(args.rest) or 0


def cmd_events(args: argparse.Namespace) -> int:
    from studio_nb.eventbus import events_command

    return events_command(args) or 0


# ---------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="studio-nb", description="SAGE Studio, Jupyter-first: a local research/coding assistant")
    p.add_argument("--data-dir", help="where indexes and memory live (default: $STUDIO_NB_DATA_DIR or ~/.studio_nb)")
    p.add_argument("--config", help="a YAML file of Studio settings (see studio_nb/config.py)")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("chat", help="ask a question (streams); without one, an interactive loop")
    c.add_argument("question", nargs="*")
    c.add_argument("-s", "--session", default="cli")
    c.add_argument("-d", "--domain", action="append", help="search only this knowledge domain (repeatable)")
    c.add_argument("-v", "--verbose", action="store_true", help="show steps, intent, sources and timings")
    c.add_argument("--json", action="store_true", help="print the response record as JSON")
    c.add_argument("--max-tokens", type=int)
    c.add_argument("--engine", choices=["local", "ray"])
    c.set_defaults(func=cmd_chat)

    d = sub.add_parser("demo", help="answer a sample question on the embedded defaults")
    d.add_argument("--max-tokens", type=int)
    d.add_argument("--engine", choices=["local", "ray"])
    d.set_defaults(func=cmd_demo)

    i = sub.add_parser("ingest", help="add files or a folder to a knowledge domain")
    i.add_argument("path")
    i.add_argument("--domain", required=True)
    i.add_argument("--json", action="store_true")
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
    from studio_nb.eventbus import add_events_arguments

    add_events_arguments(ev)
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
