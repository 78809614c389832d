"""Reading kb's answers over HTTP, for every client of the API in this repository."""

from __future__ import annotations

from typing import Any

import httpx

from kb.errors import RemoteError


def json_or_raise(response: httpx.Response) -> Any:
    """The answer's JSON, or the service's ``{"error": {"code", "message"}}`` raised as :class:`RemoteError`."""
    if response.status_code < 400:
        return response.json()
    try:
        error = response.json()["error"]
        code, message = error["code"], error["message"]
    except (ValueError, KeyError, TypeError):
        code, message = "http_error", response.text[:200]
    raise RemoteError(response.status_code, code, message)
