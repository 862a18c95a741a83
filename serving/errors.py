"""The one error type of the Serve app: an HTTP status and a body detail (FastAPI's 422 shape
[{loc, msg, type}] or a message). Raised by route logic and deployments alike."""

from __future__ import annotations

from fastapi.responses import JSONResponse


class ApiError(Exception):
    def __init__(self, status: int, detail, extra: dict | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.extra = extra or {}  # more top-level keys of the body (e.g. `cannot_synthesize`)

    def __reduce__(self):  # picklable as its own class, so it crosses DeploymentHandle boundaries intact
        return (type(self), (self.status, self.detail, self.extra))

    def response(self) -> JSONResponse:
        return JSONResponse(status_code=self.status, content={"detail": self.detail, **self.extra})
