"""Flask extensions shared by every blueprint (init_app pattern, no per-app state here)."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlencode

from flask import Flask, Response, has_request_context, request
from flask_babel import Babel, get_locale
from flask_wtf import CSRFProtect

from idp import context

csrf = CSRFProtect()
babel = Babel()

LOCALES = ("zh_CN", "en")
MACHINE_ENDPOINTS = "idp.machine_endpoints"  # app.extensions: see serves_machines


def select_locale() -> str:
    """zh-CN by default; ``?lang=en`` or a cookie set from it switches to English."""
    if not has_request_context():  # CLI commands speak Chinese
        return "zh_CN"
    flask_request = context.request()
    wanted = flask_request.args.get("lang") or flask_request.cookies.get("lang")
    return wanted if wanted in LOCALES else "zh_CN"


def lang_url(lang: str) -> str:
    """This page in another language, keeping its query (e.g. a pending login's interaction)."""
    args = request.args.to_dict()
    args["lang"] = lang
    return f"{request.path}?{urlencode(args)}"


def check_csrf() -> None:
    """Flask-WTF's check with its exemptions, run by idp.pipeline in its place among the request
    hooks (``WTF_CSRF_CHECK_DEFAULT`` is off, so Flask-WTF's own hook does nothing). Safe
    methods have nothing to check, and skip the exemption lookup."""
    config = context.app().config
    if context.request().method in config["WTF_CSRF_METHODS"] and config["WTF_CSRF_ENABLED"]:
        csrf.protect(apply_exemptions=True)


def remember_locale(response: Response) -> Response:
    """``?lang=`` is remembered in a cookie (run by idp.pipeline on browser requests)."""
    lang = context.request().args.get("lang")
    if lang in LOCALES:
        response.set_cookie("lang", lang, max_age=365 * 86400, samesite="Lax", httponly=True)
    return response


def serves_machines(app: Flask, *, endpoints: Iterable[str] = (), blueprint: str = "") -> None:
    """Mark endpoints (or a whole blueprint) that browsers do not use: idp.pipeline skips the
    browser work (cookies, form-action) there."""
    machines: set[str] = app.extensions.setdefault(MACHINE_ENDPOINTS, set())
    machines.update(endpoints)
    if blueprint:
        machines.add(blueprint + ".")


def init_app(app: Flask) -> None:
    app.extensions.setdefault(MACHINE_ENDPOINTS, set())
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False  # check_csrf runs instead
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale, default_locale="zh_CN")
    app.jinja_env.globals["get_locale"] = get_locale
    app.jinja_env.globals["lang_url"] = lang_url
