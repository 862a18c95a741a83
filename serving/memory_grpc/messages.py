"""The generated message (`pb`) and stub (`pb_grpc`) modules, built on first import if missing
or stale, and the settings server and client share."""

from __future__ import annotations

from . import load

pb, pb_grpc = load()

DEFAULT_MAX_MESSAGE_BYTES = 64 << 20
# CreateCollectionRequest's spec settings, named as the router names them.
SPEC_FIELDS = tuple(f.name for f in pb.CreateCollectionRequest.DESCRIPTOR.fields if f.name not in ("name", "spec_json"))
