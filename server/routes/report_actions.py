"""The report's forms: the login that takes the key once, and the review and acknowledge buttons.

Plain HTML forms (no JavaScript). A successful action redirects back to the report it came from (303, so a
reload does not post again); a refused one shows why on a page of its own with a link back.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from kb.errors import KBError
from kb.ingest.actions import acknowledge_variant, confirm_review
from kb.server.guard import SESSION_COOKIE, session_token
from kb.server.routes import KB
from kb.server.routes.report import page
from kb.settings import Role

router = APIRouter(tags=["report"], include_in_schema=False)
SESSION_SECONDS = 12 * 3600
"""How long the browser keeps the report's session cookie: a working day."""


def _back(target: str | None) -> str:
    """Only this site's report pages: a ``next`` pointing elsewhere would make the form an open redirect."""
    return target if target and target.startswith("/report") and not target.startswith("/report/login") else "/report"


@router.get("/report/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> HTMLResponse:
    """The form that takes the key once, for people without header tools."""
    return page("login.html", next=_back(next), open=not request.app.state.kb_state.settings.api_keys)


@router.post("/report/login")
def login(
    request: Request, key: Annotated[str, Form(max_length=500)], next: Annotated[str, Form()] = "/report"
) -> Response:
    """A valid editor key sets a session cookie (HttpOnly, Secure, SameSite=Strict) that the guard accepts."""
    roles = request.app.state.kb_state.settings.key_roles
    role = roles.get(key.strip())
    if role is not Role.editor:
        problem = ("this is an agent key: the report needs an editor key" if role is Role.agent
                   else "that key is not one of KB_API_KEYS")  # fmt: skip
        return page("login.html", next=_back(next), open=False, problem=problem, status=401 if role is None else 403)
    response = RedirectResponse(_back(next), status_code=303)
    response.set_cookie(SESSION_COOKIE, session_token(key.strip()), max_age=SESSION_SECONDS, path="/",
                        secure=True, httponly=True, samesite="strict")  # fmt: skip
    return response


@router.post("/report/logout")
def logout() -> Response:
    response = RedirectResponse("/report/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return response


def _refused(exc: KBError, back: str) -> HTMLResponse:
    return page("refused.html", message=exc.message, back=back, status=exc.status)


@router.post("/report/review")
def review(
    kb: KB,
    doc_id: Annotated[str, Form(max_length=200)],
    reviewed_by: Annotated[str, Form(max_length=200)],
    region: Annotated[str, Form(max_length=40)] = "global",
    note: Annotated[str, Form(max_length=500)] = "",
    expected_hash: Annotated[str, Form(max_length=80)] = "",
    next: Annotated[str, Form()] = "/report",
) -> Response:
    """The row's "Confirm review" button: the same as POST /v1/documents/{doc_id}/review."""
    try:
        confirm_review(kb, doc_id, region, reviewed_by, note, expected_hash or None)
    except KBError as exc:
        return _refused(exc, _back(next))
    return RedirectResponse(_back(next), status_code=303)


@router.post("/report/acknowledge")
def acknowledge(
    kb: KB,
    doc_id: Annotated[str, Form(max_length=200)],
    region: Annotated[str, Form(max_length=40)],
    base_version: Annotated[int | None, Form(ge=1)] = None,
    expected_hash: Annotated[str, Form(max_length=80)] = "",
    next: Annotated[str, Form()] = "/report",
) -> Response:
    """The row's "Deliberately different" button: writes in_sync_with into the variant."""
    try:
        acknowledge_variant(kb, doc_id, region, base_version, expected_hash or None)
    except KBError as exc:
        return _refused(exc, _back(next))
    return RedirectResponse(_back(next), status_code=303)
