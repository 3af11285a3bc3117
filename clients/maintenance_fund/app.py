"""Views of the demo relying party 上海市房屋维修资金管理系统.

Each view is a short list of steps from ``oidc``; everything the user sees is Chinese.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import requests
from flask import Blueprint, Flask, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from . import oidc
from .backchannel import ENDED_NOTICE
from .errors import RpError
from .security import check_csrf

log = logging.getLogger(__name__)

bp = Blueprint("maintenance_fund", __name__)

ORG_TYPE_LABELS = {
    "audit": "审计单位",
    "cost_consulting": "工程造价咨询单位",
    "bookkeeping": "代理记账公司",
}
ROLE_LABELS = {"org_admin": "企业管理员", "operator": "操作员"}
# China has kept UTC+8 without daylight saving since 1991, so a fixed offset is exact and
# needs no tz database.
BEIJING = timezone(timedelta(hours=8), "北京时间")


@bp.get("/")
def home() -> ResponseReturnValue:
    """Logged out: the 登录 button. Logged in: who the provider says the user is."""
    login = session.get(oidc.LOGIN_KEY)
    user = user_view(login) if login else None
    ended = session.pop(ENDED_NOTICE, False)
    return render_template("home.html", user=user, ended_by_provider=ended)


@bp.get("/login")
def login() -> ResponseReturnValue:
    """Start the code flow; also the ``initiate_login_uri`` for the portal (OIDC Core §4)."""
    config = oidc.current_config()
    login_request = oidc.parse_login_request(request.args, config)
    return oidc.start_login(config, login_request)


@bp.get("/register")
def register() -> ResponseReturnValue:
    """维修资金业务办理组织机构注册: the provider's UKey login and registration wizard, which end
    back here logged in (the authorization request waits while the organisation registers)."""
    return oidc.start_login(oidc.current_config(), oidc.LoginRequest(register=True))


@bp.get("/callback")
def callback() -> ResponseReturnValue:
    """Finish the code flow; on any failure show why and keep nothing."""
    token = oidc.complete_login(oidc.current_config())
    next_url = oidc.store_login(token)
    return redirect(next_url or url_for(".home"))


@bp.post("/refresh")
def refresh() -> ResponseReturnValue:
    """Refresh token grant; a rejected refresh token ends the local login too."""
    login = session.get(oidc.LOGIN_KEY)
    if not login:
        return redirect(url_for(".home"))
    try:
        session[oidc.LOGIN_KEY] = oidc.refresh_login(oidc.current_config(), login)
    except RpError as error:
        if error.code != "invalid_grant":
            raise
        session.clear()
        raise RpError("invalid_grant", description=error.description, status=401) from error
    return redirect(url_for(".home"))


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """End the local session first, then ask the provider to end its own (RP-initiated logout)."""
    login = session.get(oidc.LOGIN_KEY)
    session.clear()
    if not login:
        return redirect(url_for(".home"))
    return oidc.logout_response(oidc.current_config(), login.get("id_token"))


@bp.get("/logged-out")
def logged_out() -> ResponseReturnValue:
    """Where the provider returns after logout; the state proves we started that logout."""
    oidc.check_logout_state()
    return render_template("logged_out.html")


def user_view(login: Mapping[str, Any]) -> dict[str, Any]:
    """What the home page shows, from the validated ID token claims."""
    claims: Mapping[str, Any] = login.get("userinfo") or {}
    org = claims.get("org")
    return {
        "name": claims.get("name") or claims.get("sub"),
        "org_name": org.get("name") if isinstance(org, Mapping) else None,
        "org_type": label(ORG_TYPE_LABELS, claims.get("org_type")),
        "role": label(ROLE_LABELS, claims.get("role")),
        "is_org_admin": claims.get("role") == "org_admin",
        "amr": [str(value) for value in claims.get("amr") or []],
        "expires_at": format_expiry(login.get("expires_at")),
        "has_refresh_token": bool(login.get("refresh_token")),
    }


def label(labels: Mapping[str, str], value: object) -> str:
    """Chinese label of a claim value; an unknown value is shown as-is rather than hidden."""
    if value is None:
        return "未提供"
    return labels.get(str(value), f"未知（{value}）")


def format_expiry(expires_at: object) -> str:
    """Access token expiry in Beijing time, marked when already past."""
    if not isinstance(expires_at, int | float):
        return "未提供"
    moment = datetime.fromtimestamp(expires_at, tz=UTC)
    text = moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S 北京时间")
    return text + "（已过期）" if moment <= datetime.now(tz=UTC) else text


def render_error(error: RpError) -> ResponseReturnValue:
    """One page for every failure: the message, the error code and a way back."""
    log.info("relying party error %s: %s", error.code, error.description)
    page = render_template("error.html", error=error)
    return page, error.status


def render_unreachable(error: requests.RequestException) -> ResponseReturnValue:
    """The provider did not answer (or answered garbage); details go to the log only."""
    log.warning("provider request failed: %r", error)
    return render_error(RpError("provider_unreachable", status=502))


def init_app(app: Flask) -> None:
    """Register the views, the CSRF check and the error pages on ``app``."""
    app.register_blueprint(bp)
    app.before_request(check_csrf)
    app.register_error_handler(RpError, render_error)
    app.register_error_handler(requests.RequestException, render_unreachable)
