"""The memory library's errors. Each names what was wrong; callers over Ray can catch them as is
(Ray re-raises an actor's exception as an instance of its class)."""

from __future__ import annotations


class MemoryInputError(ValueError):
    """A request the memory refuses (bad shape, NaN, k out of range, duplicate id, ...).
    Nothing of a refused request is stored. `field` names the offending part of the request."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def __reduce__(self):
        return (type(self), (self.field, self.message))


class CollectionNotFound(LookupError):
    """No collection of that name."""

    def __init__(self, name: str, known: list[str] | None = None):
        known = sorted(known or [])
        hint = f"; known collections: {', '.join(known)}" if known else "; no collections exist yet"
        super().__init__(f"unknown collection {name!r}{hint}")
        self.name = name
        self.known = known

    def __reduce__(self):
        return (type(self), (self.name, self.known))


class CorruptStore(RuntimeError):
    """On-disk state that cannot be recovered without losing acknowledged writes
    (a damaged record in the middle of the log, or no readable snapshot where one is needed)."""
