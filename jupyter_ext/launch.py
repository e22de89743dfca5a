"""Start JupyterLab (or plain Jupyter Server) with the Studio extension on 127.0.0.1.

``studio-nb serve`` / ``make run`` call :func:`main`. It picks a free port and a fresh
token itself so it can print the Studio page's URL before the server takes over the
terminal; everything after ``--`` goes to Jupyter unchanged.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import sys
from typing import Sequence


def _free_port(host: str, preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise OSError(f"no free TCP port on {host}")


def _app_class(prefer_lab: bool):
    if prefer_lab:
        try:
            from jupyterlab.labapp import LabApp

            return LabApp, "JupyterLab"
        except ImportError:
            pass
    from jupyter_server.serverapp import ServerApp

    return ServerApp, "Jupyter Server"


def build_argv(args: argparse.Namespace, port: int, token: str) -> list[str]:
    argv = [
        f"--ServerApp.ip={args.host}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.open_browser={args.open}",
        "--ServerApp.jpserver_extensions=jupyter_ext=True",
    ]
    for trait, value in (("config_file", args.config), ("data_dir", args.data_dir), ("model", args.model),
                         ("engine", args.engine)):
        if value:
            argv.append(f"--StudioExtension.{trait}={value}")
    if args.root_dir:
        argv.append(f"--ServerApp.root_dir={args.root_dir}")
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers and CI boxes run as root
        argv.append("--ServerApp.allow_root=True")
    return argv + list(args.jupyter_args)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="studio-nb serve", description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    ap.add_argument("--port", type=int, default=8888, help="preferred port; a free one is used if taken")
    ap.add_argument("--server-only", action="store_true", help="plain Jupyter Server, even if JupyterLab is installed")
    ap.add_argument("--open", action="store_true", help="open a browser on the Studio page")
    ap.add_argument("--config", help="Studio configuration YAML")
    ap.add_argument("--data-dir", help="knowledge, memory and uploads folder")
    ap.add_argument("--model", help="GGUF path or OpenAI-compatible URL")
    ap.add_argument("--engine", choices=("local", "ray"))
    ap.add_argument("--root-dir", help="Jupyter's notebook folder")
    ap.add_argument("jupyter_args", nargs=argparse.REMAINDER, help="after --: passed to Jupyter unchanged")
    args = ap.parse_args(argv)
    if args.jupyter_args and args.jupyter_args[0] == "--":
        args.jupyter_args = args.jupyter_args[1:]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    from jupyter_ext.fast_start import skip_unused_iri_checker

    skip_unused_iri_checker()  # before Jupyter is imported: ~3 s of start-up on 2 cores
    args = parse_args(argv)
    port = _free_port(args.host, args.port)
    token = secrets.token_hex(24)
    app_cls, label = _app_class(not args.server_only)
    url = f"http://{args.host}:{port}/studio/?token={token}"
    print(f"Starting {label} with SAGE Studio on {args.host}:{port} (models load in the background)")
    print(f"Studio page: {url}", flush=True)
    if args.open:
        # open the Studio page rather than the Jupyter tree
        args.jupyter_args = [f"--ServerApp.default_url=/studio/", *args.jupyter_args]
    app_cls.launch_instance(argv=build_argv(args, port, token))
    return 0


if __name__ == "__main__":
    sys.exit(main())
