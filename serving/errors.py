"""The one error type of the Serve app: an HTTP status and a body detail (FastAPI's 422 shape
[{loc, msg, type}] or a message). Raised by route logic and deployments alike. Also what the
request models share so that they refuse exactly what their JSON Schema does."""

from __future__ import annotations

from typing import Annotated

from fastapi.responses import JSONResponse
from pydantic import BeforeValidator, ConfigDict, Field

# The request models' config: unknown keys refused, no type coercion ("true" is no bool), no NaN.
STRICT = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


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


def exactly_one(**types: str) -> dict:
    """JSON Schema (a model's json_schema_extra) for "give exactly one of these properties, not
    null". The route checks it itself, answering 422 naming the field; this makes the schema say so."""
    return {"oneOf": [{"required": [name], "properties": {name: {"type": t}}} for name, t in types.items()]}


def _integral(v):
    # only where the float is exact: above 2**53 a JSON number like 9007199254740993.0 has already
    # been rounded to another integer, so it stays a float and is refused
    return int(v) if isinstance(v, float) and v.is_integer() and abs(v) <= 2**53 else v


def Int(**bounds):
    """An integer within `bounds` (ge, le, lt) for strict models: JSON Schema counts 5.0 as an
    integer, so it is 5 here too, while "5" and true stay refused (pydantic's lax int takes them).
    The bounds sit inside, so that `Int(...) | None` keeps them in its JSON Schema."""
    return Annotated[int, Field(**bounds), BeforeValidator(_integral)]
