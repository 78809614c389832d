"""Errors kb raises, each with a stable code and the HTTP status a client should see.

    KBError                      500  base; never raised as such
    ├── InvalidRequest           400  a query or parameter a client sent is wrong
    ├── Unauthorized             401  an API key is required and was missing or wrong
    ├── Forbidden                403  the key is valid but its role may not do this
    ├── BodyTooLarge             413  a request body over KB_MAX_BODY_BYTES
    ├── DocumentNotFound         404  no series with that doc_id
    ├── VersionNotFound          404  that doc_id has no such version (in that region)
    ├── InvalidDocument          422  a policy file cannot be read or validated
    │   ├── InvalidFrontMatter   422  one front-matter key has a bad value
    │   ├── ConflictingDocument  422  another file already defines that doc_id, region and version
    │   └── PersonalData         422  the file holds personal data and KB_PII=reject
    ├── ConfigError              500  settings or regions.yaml are unusable
    ├── DataDirLocked            409  another kb process holds the data folder
    ├── EditConflict             409  the file changed on disk since the page that asked for the edit was made
    ├── CannotEdit               422  kb cannot write that key into that file (not a policy file, no such region)
    ├── NotReady                 503  the service is still loading its index
    ├── StoreError               500  the vector store failed
    ├── LedgerError              503  the ledger's database cannot be reached or opened
    ├── ReadOnly                 503  this process is an API replica and never writes: the writer does
    ├── LeaseLost                503  another writer took the writer lease over: this one stops writing
    └── RemoteError              any  a kb service called over HTTP answered with an error (its status)

Foreign exceptions (chromadb, sqlite3, yaml, pydantic) are translated where they occur, so nothing
above kb/ has to know those libraries.
"""

from __future__ import annotations


class KBError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(KBError):
    status = 400
    code = "invalid_request"


class Unauthorized(KBError):
    status = 401
    code = "unauthorized"


class Forbidden(KBError):
    status = 403
    code = "forbidden"


class BodyTooLarge(KBError):
    status = 413
    code = "body_too_large"


class DocumentNotFound(KBError):
    status = 404
    code = "document_not_found"

    def __init__(self, doc_id: str) -> None:
        super().__init__(f"no document with doc_id {doc_id!r}")
        self.doc_id = doc_id


class VersionNotFound(KBError):
    status = 404
    code = "version_not_found"

    def __init__(self, doc_id: str, version: int, region: str | None) -> None:
        where = f" in region {region}" if region else ""
        super().__init__(f"document {doc_id!r} has no version {version}{where}")
        self.doc_id, self.version, self.region = doc_id, version, region


class InvalidDocument(KBError):
    status = 422
    code = "invalid_document"
    kind = "parse_error"
    """The staleness reason a rejected file is listed under."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


class InvalidFrontMatter(InvalidDocument):
    code = "invalid_front_matter"

    def __init__(self, path: str, field: str, reason: str) -> None:
        super().__init__(path, f"front matter key '{field}': {reason}")
        self.field = field


class ConflictingDocument(InvalidDocument):
    code = "conflicting_document"
    kind = "conflict"


class PersonalData(InvalidDocument):
    code = "personal_data"
    kind = "pii_detected"


class ConfigError(KBError):
    code = "config_error"


class DataDirLocked(KBError):
    status = 409
    code = "data_dir_locked"


class EditConflict(KBError):
    status = 409
    code = "edit_conflict"


class CannotEdit(KBError):
    status = 422
    code = "cannot_edit"


class NotReady(KBError):
    status = 503
    code = "not_ready"


class StoreError(KBError):
    code = "store_error"


class LedgerError(KBError):
    status = 503
    code = "ledger_unavailable"


class ReadOnly(KBError):
    status = 503
    code = "read_only_replica"


class LeaseLost(KBError):
    status = 503
    code = "lease_lost"


class FellBehind(KBError):
    """A replica that stopped following for longer than the ledger keeps changes (kb.ledger.KEPT_CHANGES)."""

    status = 503
    code = "fell_behind"


class RemoteError(KBError):
    """A client of kb's HTTP API (kb.integrations) got an error answer: its status, code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"kb answered {status} {code}: {message}")
        self.status, self.code = status, code


def yaml_problem(exc: Exception, first_line: int = 1) -> str:
    """A YAML error in one line for people: what is wrong and where (``first_line`` numbers the text's first line)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{problem} at line {mark.line + first_line}" if mark else problem
