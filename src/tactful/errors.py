"""One error tree for the whole engine. No web imports here: `main.py` maps it to HTTP in one place.

    TactfulError
    ├── ConfigurationError        the deployment is misconfigured (refuse to start)
    │   ├── CatalogError          the catalog file is invalid (carries every problem)
    │   └── KeystoreLocked        503: the keystore's keys are wrapped under another secret key
    ├── InvalidInput              422: the caller sent something we cannot accept
    │   ├── MalformedJson         422: the body is not JSON text
    │   ├── InvalidDefinition     422: a placement, audience or experience to fix (each fault listed)
    │   └── PayloadTooLarge       413
    ├── NotAuthenticated          401: no key, unknown key, wrong key (one answer for all)
    ├── PermissionDenied          403: a valid key without the scope
    ├── NotFound                  404
    ├── Conflict                  409
    ├── KeyDestroyed              a subject's data key was destroyed by erasure
    └── ServiceUnavailable        503
        └── DatabaseNotMigrated   the schema is behind the code: run `tactful migrate`

Expected outcomes of the engine (a refused purpose, a quarantined event) are results with reasons,
not exceptions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class TactfulError(Exception):
    """Base of every error the engine raises on purpose."""

    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ConfigurationError(TactfulError):
    code = "configuration"


class CatalogError(ConfigurationError):
    code = "catalog_invalid"

    def __init__(self, message: str, *, problems: Sequence[object] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


class InvalidInput(TactfulError):
    code = "invalid_input"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message, code=code)
        self.field = field


class MalformedJson(InvalidInput):
    """The body cannot be read as JSON text (not UTF-8, or not JSON): one code on every route."""

    code = "malformed_json"


class InvalidDefinition(InvalidInput):
    """A definition with faults a person must fix: each has a field path, a code and a sentence that
    says how (`problems`, as `errors` in the problem document)."""

    code = "invalid_definition"

    def __init__(self, message: str, *, problems: Sequence[FieldProblem], code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.problems = list(problems)


@dataclass(frozen=True)
class FieldProblem:
    """One fault of an `InvalidDefinition`: `loc` is the path into the request body, `type` its code."""

    loc: tuple[str | int, ...]
    msg: str
    type: str


class PayloadTooLarge(InvalidInput):
    """A body larger than its route accepts: one code on every route, whichever check refused it."""

    code = "request_too_large"


class KeystoreLocked(ConfigurationError):
    """The key-encryption key does not open the keystore: `TACTFUL_SECRET_KEY` is not the key the
    keystore is wrapped under (after `tactful secret rotate`, before the restart it asks for). The
    process cannot read or write a subject's data until it runs with the right key."""

    code = "keystore_locked"


class NotAuthenticated(TactfulError):
    code = "not_authenticated"


class PermissionDenied(TactfulError):
    code = "permission_denied"


class NotFound(TactfulError):
    code = "not_found"


class Conflict(TactfulError):
    code = "conflict"


class ServiceUnavailable(TactfulError):
    code = "unavailable"


class DatabaseNotMigrated(ServiceUnavailable):
    code = "database_not_migrated"


class KeyDestroyed(TactfulError):
    """A subject's data key is gone (erased): its encrypted values can no longer be read."""

    code = "key_destroyed"
