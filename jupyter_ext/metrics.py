"""``{base_url}studio/metrics``: the pipeline's Prometheus metrics, when telemetry is on.

Switched on by the Studio configuration (``telemetry: {prometheus: true}``, e.g. through
``c.StudioExtension.pipeline_overrides = {"telemetry": {"prometheus": True}}``). The
endpoint is authenticated and authorized like every other Studio route (a scraper uses
a Jupyter token); without the setting it answers 404 with the fix.
"""

from __future__ import annotations

import json

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web

#: the Prometheus text exposition format
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class MetricsHandler(APIHandler):
    auth_resource = "studio_nb:pipeline"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        runtime = self.settings["studio_runtime"]
        pipe = await runtime.pipeline()
        prometheus = getattr(getattr(pipe, "telemetry", None), "prometheus", None)
        if prometheus is None:
            self.set_status(404)
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({
                "code": "metrics_off",
                "message": "Prometheus metrics are off; set telemetry: {prometheus: true} in the Studio "
                "configuration (e.g. c.StudioExtension.pipeline_overrides = "
                "{'telemetry': {'prometheus': True}}) and restart the server",
            }))
            return
        # APIHandler.finish would otherwise relabel the text exposition as JSON
        self.finish(prometheus.exposition(), set_content_type=CONTENT_TYPE)
