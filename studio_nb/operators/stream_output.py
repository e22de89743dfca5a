"""StreamOutputOp: the end of the pipeline, where the final Response is completed."""

from __future__ import annotations

from dataclasses import replace

from studio_nb.kernel import Operator, current_request
from studio_nb.messages import Response


class StreamOutputOp(Operator):
    """Tokens reach the user as they are generated (the engine streams them); this sink
    finishes the record the front end gets last: per-operator timings of the whole turn."""

    def process(self, msg: Response) -> Response:
        ctx = current_request()
        if ctx is None:
            return msg
        return replace(msg, timings=dict(ctx.timings))
