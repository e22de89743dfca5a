"""The ``studio`` ExtensionApp: configuration, the shared pipeline runtime, URL routing.

Every knob an operator of the server would set is a ``config=True`` trait, e.g. in
``jupyter_server_config.py``::

    c.StudioExtension.data_dir = "/srv/studio"
    c.StudioExtension.model = "http://127.0.0.1:8080/v1"      # or a GGUF path
    c.StudioExtension.max_requests_per_user = 2

Server start never waits for models: the pipeline is built and warmed on a worker thread
started by ``_start_jupyter_server_extension``; the first chat waits for it if needed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from jupyter_server.extension.application import ExtensionApp, ExtensionAppJinjaMixin
from traitlets import Bool, Dict, Enum, Int, List, Unicode

from jupyter_ext.runtime import StudioRuntime, load_factory

STATIC = Path(__file__).resolve().parent / "static"


class StudioExtension(ExtensionAppJinjaMixin, ExtensionApp):
    name = "studio"
    extension_url = "/studio/"
    load_other_extensions = True
    static_paths = [str(STATIC)]
    template_paths = [str(STATIC)]

    config_file = Unicode(
        "", config=True,
        help="Path to a Studio configuration YAML (the keys of studio_nb.config.DEFAULTS); traits below win.",
    )
    pipeline_yaml = Unicode(
        "", config=True, help="Path to a pipeline graph YAML (empty: the built-in studio.yaml graph)."
    )
    data_dir = Unicode(
        "", config=True,
        help="Folder for the knowledge index, memory database and uploads (empty: the pipeline's default).",
    )
    model = Unicode(
        "", config=True,
        help="Chat model: a GGUF file path, or an OpenAI-compatible server URL (http://...). "
        "Empty: the bundled SmolLM2 GGUF. A GGUF runs in the user's model process, out of the server "
        "(pipeline_overrides {'llm': {..., 'isolation': 'inline'}} loads it in the server instead).",
    )
    engine = Enum(["local", "ray"], default_value="local", config=True,
                  help="Where operators run: in the server process ('local') or on a Ray cluster ('ray').")
    max_message_size = Int(
        64 * 1024, config=True,
        help="Largest WebSocket text frame in bytes; larger frames get an error frame 'too_large'. "
        "Frames over 4x this size close the socket (tornado's transport limit).",
    )
    turns_on_server_loop = Bool(
        True, config=True,
        help="Run every Studio turn on the server's own event loop (no thread hop per token between the "
             "model client and the socket). Off: turns run on studio-nb's background loop thread.",
    )
    max_requests_per_user = Int(4, config=True, help="Chat requests one user may have in flight at once.")
    max_requests_total = Int(16, config=True, help="Chat requests the server answers at once, all users together.")
    upload_max_bytes = Int(20 * 1024 * 1024, config=True, help="Largest knowledge upload request in bytes.")
    upload_max_files = Int(50, config=True, help="Most files in one knowledge upload request.")
    api_max_body_bytes = Int(
        1024 * 1024, config=True,
        help="Largest body of any other Studio REST request (JSON); refused before it is read.",
    )
    ingest_workers = Int(
        1, config=True,
        help="Threads that ingest uploads, all users together (each ingest embeds with the CPU the answers "
        "need too; uploads beyond this wait their turn, visible in GET studio/api/ingests).",
    )
    ingest_max_concurrent_per_user = Int(2, config=True, help="Uploads one user may have received or ingesting at once.")
    ingest_max_pdf_pages = Int(2000, config=True, allow_none=True, help="Most pages in one uploaded PDF (None: no limit).")
    ingest_max_pdf_content_bytes = Int(
        64 * 1024 * 1024, config=True, allow_none=True,
        help="Most decoded page content one uploaded PDF may make text extraction parse, a content stream "
        "shared by several pages counted for each (what a small PDF of many pages drawing one stream costs).",
    )
    ingest_max_file_chars = Int(
        8_000_000, config=True, allow_none=True, help="Most characters of text in one uploaded file (None: no limit).",
    )
    ingest_max_chunks = Int(20_000, config=True, allow_none=True, help="Most chunks one upload may add.")
    ingest_max_user_chunks = Int(
        200_000, config=True, allow_none=True, help="Most chunks one user's private domains may hold together.",
    )
    pipeline_overrides = Dict(
        {}, config=True,
        help="Extra keyword overrides passed to the pipeline factory (e.g. {'max_tokens': 64}).",
    )
    pipeline_factory = Unicode(
        "studio_nb.studio:create_studio_pipeline", config=True,
        help="'module:function' that builds the pipeline; it receives config= and the overrides.",
    )
    shared_token_user = Unicode(
        "local", config=True,
        help="Owner name for sessions when Jupyter's built-in token/password login is used (one shared "
        "secret, so one user). Empty: use Jupyter's generated anonymous names. Other identity "
        "providers (JupyterHub, custom) always use their real user names.",
    )
    warm_up_on_start = Bool(True, config=True, help="Load models in the background as soon as the server starts.")
    admin_users = List(
        Unicode(), [], config=True,
        help="Users who may change what everyone sees: global pipeline toggles, shared knowledge domains "
        "(upload with ?scope=shared), the server's details in studio/api/health. With Jupyter's built-in "
        "token/password login the one user is the admin.",
    )
    shared_domains = List(
        Unicode(), None, allow_none=True, config=True,
        help="Shared (admin-ingested) knowledge domains every user may read. None: all of them. The "
        "bundled studio_nb_docs is always shared; each user's uploads are private to them either way.",
    )
    chat_member = Enum(
        ["auto", "native", "persona", "off"], default_value="auto", config=True,
        help="Studio in JupyterLab's chat (jupyterlab-chat): 'auto' is a jupyter-ai persona when jupyter-ai's "
        "persona manager is loaded, else answers @Studio itself; 'native'/'persona' force one; 'off' joins no chat.",
    )
    workspace = Unicode(
        "", config=True,
        help="Folder the file tools (read_file, list_files) may read. Empty: ServerApp.root_dir. "
        "'{user}' is replaced by the user's name (e.g. '/home/{user}'): one folder per user.",
    )

    # ---------------------------------------------------------------- settings
    def factory_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"engine": self.engine, "workspace": self.tool_workspace()}
        if self.shared_domains is not None:
            kw["shared_domains"] = list(self.shared_domains)
        if self.pipeline_yaml:
            kw["pipeline"] = str(Path(self.pipeline_yaml).expanduser())
        if self.data_dir:
            kw["data_dir"] = str(Path(self.data_dir).expanduser())
        if self.model:
            if self.model.startswith(("http://", "https://")):
                kw["llm"] = {"backend": "openai", "base_url": self.model}
            else:
                kw["llm"] = {"backend": "llama_cpp", "model_path": str(Path(self.model).expanduser()), "n_ctx": 2048}
        kw.update(self.pipeline_overrides)
        return kw

    def build_pipeline(self) -> Any:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        factory = load_factory(self.pipeline_factory)
        return factory(config=self.config_file or None, **self.factory_kwargs())

    def tool_workspace(self) -> str:
        """The file tools' folder: the ``workspace`` trait, else Jupyter's root_dir (never
        the server's launch directory)."""
        if self.workspace:
            return os.path.expanduser(self.workspace)
        return str(Path(self.serverapp.root_dir).expanduser().resolve())

    def user_workspace(self, user: str) -> str:
        """The folder ``user``'s ``/learn`` may read: the ``workspace`` trait with ``{user}``
        filled in, else Jupyter's root_dir."""
        if self.workspace:
            return os.path.expanduser(self.workspace.replace("{user}", user))
        return str(Path(self.serverapp.root_dir).expanduser().resolve())

    def upload_root(self) -> str:
        """``<data_dir>/uploads`` when the trait names the data dir; empty: the pipeline's own
        data dir decides (its config, then $STUDIO_NB_DATA_DIR, then ~/.studio_nb)."""
        return str(Path(self.data_dir).expanduser() / "uploads") if self.data_dir else ""

    def ingest_limits(self) -> Any:
        """What one upload's ingest may cost (each limit names the trait that raises it)."""
        from studio_nb.services.knowledge.limits import IngestLimits

        names = ("max_pdf_pages", "max_pdf_content_bytes", "max_file_chars", "max_chunks", "max_user_chunks")
        return IngestLimits(**{n: getattr(self, f"ingest_{n}") for n in names},
                            settings={n: f"StudioExtension.ingest_{n}" for n in names})

    def initialize_settings(self) -> None:
        from jupyter_ext.ingest_jobs import IngestJobs

        t0 = time.perf_counter()
        self.runtime = StudioRuntime(
            self.build_pipeline,
            max_per_user=self.max_requests_per_user,
            max_total=self.max_requests_total,
            warm_up=True,
        )
        self.settings.update(
            studio_runtime=self.runtime,
            studio_max_message_size=self.max_message_size,
            studio_ws_hard_limit=4 * self.max_message_size + 4096,
            studio_upload_max_bytes=self.upload_max_bytes,
            studio_upload_max_files=self.upload_max_files,
            studio_upload_root=self.upload_root(),
            studio_api_max_body_bytes=self.api_max_body_bytes,
            studio_ingest_jobs=IngestJobs(max_per_user=self.ingest_max_concurrent_per_user,
                                          workers=self.ingest_workers),
            studio_ingest_limits=self.ingest_limits(),
            studio_shared_token_user=self.shared_token_user,
            studio_admin_users=frozenset(self.admin_users),
        )
        self.init_s = time.perf_counter() - t0

    def initialize_handlers(self) -> None:
        from jupyter_ext.metrics import MetricsHandler
        from jupyter_ext.page import StudioPageHandler
        from jupyter_ext.rest import rest_handlers
        from jupyter_ext.ws_chat import ChatWebSocket

        self.handlers.extend([
            ("studio/?", StudioPageHandler),
            ("studio/metrics", MetricsHandler),
            ("studio/api/chat", ChatWebSocket),
            *rest_handlers("studio/api"),
        ])

    # ---------------------------------------------------------------- lifecycle
    def initialize(self) -> None:
        t0 = time.perf_counter()
        super().initialize()
        self.load_s = time.perf_counter() - t0  # what the extension adds to server start

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        self.runtime.turn_loop = self._choose_turn_loop()
        if self.warm_up_on_start:
            self.runtime.start()
        t0 = time.perf_counter()
        from jupyter_ext.lab_chat.wiring import start as start_chat_member

        try:
            self.chat_members = start_chat_member(self)
        except Exception:  # the chat member is an add-on: the server, the page and the API stay up without it
            self.chat_members = None
            self.log.exception("Studio could not join JupyterLab's chat; StudioExtension.chat_member='off' hides this")
        self.chat_member_s = time.perf_counter() - t0
        self.log.info("Studio extension loaded in %.1f ms; pipeline warming up in the background; page: %sstudio/",
                      1000 * getattr(self, "load_s", 0.0), serverapp.connection_url)

    def _choose_turn_loop(self) -> str:
        """"server" when turns run on this server's loop (``turns_on_server_loop``), else
        "background" (studio-nb's own loop thread): before the pipeline is built, so all of
        its loop-bound state lives on the loop its turns run on."""
        import asyncio

        from studio_nb.kernel.sync import use_loop

        if not self.turns_on_server_loop:
            return "background"
        if use_loop(asyncio.get_running_loop()):
            return "server"
        self.log.warning("Studio turns run on studio-nb's own loop: it was already running in this process "
                         "before the server started")
        return "background"

    async def stop_extension(self) -> None:
        import asyncio

        if getattr(self, "chat_members", None) is not None:
            self.chat_members.close()
        self.settings["studio_ingest_jobs"].close()  # running ingests stop at their next checkpoint
        await asyncio.to_thread(self.runtime.close)


