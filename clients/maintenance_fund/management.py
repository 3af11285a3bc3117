"""The provider's management API (``/api/v1/org/``) as the 系统管理 menus call it.

Calls carry the logged-in org admin's access token (``Authorization: Bearer``). When the API
says the token is no longer valid (401 ``invalid_token``), the login is refreshed once with the
refresh token and the call repeated; if that fails too, the local login ends and the user is
asked to log in again. Refusals come back as RFC 9457 problem details, whose ``detail`` is the
provider's message for the user: they become ``ManagementApiError`` errors that the pages show.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests
from flask import session

from . import oidc
from .config import Config
from .errors import RpError

PROBLEM_JSON = "application/problem+json"
TIMEOUT_SECONDS = 10


class ManagementApiError(RpError):
    """A refusal of the management API; the page shows ``detail`` as the provider wrote it."""

    def __init__(self, *, status: int, code: str, detail: str, field: str = "") -> None:
        super().__init__(code, status=status)
        self.detail = detail
        self.field = field

    @property
    def message(self) -> str:
        return self.detail or "统一认证登录平台拒绝了本次操作。"


def call(
    config: Config,
    method: str,
    path: str,
    *,
    params: Mapping[str, Any] | None = None,
    json: Mapping[str, Any] | None = None,
) -> Any:
    """``method path`` with the login's access token; the JSON answer, or ``ManagementApiError``."""
    login = session.get(oidc.LOGIN_KEY)
    if not login or not login.get("access_token"):
        raise RpError("login_required", status=401)
    response = send(config, method, path, login["access_token"], params=params, json=json)
    if token_rejected(response):
        login = refreshed(config, login)
        response = send(config, method, path, login["access_token"], params=params, json=json)
        if token_rejected(response):
            session.clear()
            raise RpError("login_expired", status=401)
    if response.status_code >= 400:
        raise problem_of(response)
    return response.json()


def send(
    config: Config,
    method: str,
    path: str,
    access_token: str,
    *,
    params: Mapping[str, Any] | None,
    json: Mapping[str, Any] | None,
) -> requests.Response:
    return requests.request(
        method,
        config.management_api_url + path,
        params=params,
        json=json,
        headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
        timeout=TIMEOUT_SECONDS,
        allow_redirects=False,
    )


def token_rejected(response: requests.Response) -> bool:
    """RFC 6750 §3.1: 401 with ``error="invalid_token"`` in the Bearer challenge."""
    challenge = response.headers.get("WWW-Authenticate", "")
    return response.status_code == 401 and 'error="invalid_token"' in challenge


def refreshed(config: Config, login: Mapping[str, Any]) -> dict[str, Any]:
    """The login after one refresh; a refused refresh ends the local login."""
    try:
        record = oidc.refresh_login(config, login)
    except RpError as error:
        session.clear()
        if error.code in ("invalid_grant", "no_refresh_token"):
            raise RpError("login_expired", status=401) from error
        raise
    session[oidc.LOGIN_KEY] = record
    return record


def problem_of(response: requests.Response) -> RpError:
    """The API's problem details as ``ManagementApiError``; anything else is an unexpected answer."""
    body: Any = None
    if response.headers.get("Content-Type", "").startswith((PROBLEM_JSON, "application/json")):
        try:
            body = response.json()
        except ValueError:
            body = None
    if not isinstance(body, dict) or not isinstance(body.get("code"), str):
        return RpError("api_failed", description=f"HTTP {response.status_code}", status=502)
    return ManagementApiError(
        status=response.status_code,
        code=body["code"],
        detail=str(body.get("detail") or ""),
        field=str(body.get("field") or ""),
    )
