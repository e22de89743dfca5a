"""``{base_url}studio/``: the Studio web page (static/index.html rendered by Jinja).

The template only receives values the server owns (base URL, XSRF token, static URL, the
name sessions are owned by: the page remembers its chat per user), autoescaped; everything
else the page shows comes from the API at run time and is put into the DOM as text by
the page's ES modules (static/app.js and the chat, graph, inspector and variants modules
it imports; no build step), never as HTML. As a second wall the page's
Content-Security-Policy allows scripts, styles and connections from the server itself
only: an injected inline script or a script from elsewhere would not run.
"""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.extension.handler import ExtensionHandlerJinjaMixin, ExtensionHandlerMixin
from tornado import web

from jupyter_ext.access import request_user


class StudioPageHandler(ExtensionHandlerJinjaMixin, ExtensionHandlerMixin, JupyterHandler):
    auth_resource = "studio_nb:chat"

    @property
    def content_security_policy(self) -> str:
        """Jupyter's policy (frame-ancestors, report-uri) plus script/style/connect sources."""
        if "Content-Security-Policy" in self.settings.get("headers", {}):
            return super().content_security_policy  # the server's admin set one: theirs wins
        return "; ".join([
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self' ws: wss:",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            super().content_security_policy,
        ])

    @web.authenticated
    @authorized
    def get(self) -> None:
        self.settings["studio_runtime"].start()  # opening the page starts warm-up if it had not
        html = self.render_template(
            "index.html",
            studio_base_url=self.base_url,
            studio_static=self.static_url_prefix,
            studio_xsrf=self.xsrf_token.decode("ascii"),
            studio_user=request_user(self),
        )
        self.set_header("Cache-Control", "no-store")
        self.finish(html)
