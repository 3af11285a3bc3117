"""Flask extensions shared by every blueprint (init_app pattern, no per-app state here)."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Flask, has_request_context, request
from flask_babel import Babel, get_locale, refresh
from flask_wtf import CSRFProtect

from idp.request_params import keep_form_body

csrf = CSRFProtect()
babel = Babel()

LOCALES = ("zh_CN", "en")


def select_locale() -> str:
    """zh-CN by default; ``?lang=en`` or a cookie set from it switches to English."""
    if not has_request_context():  # CLI commands speak Chinese
        return "zh_CN"
    wanted = request.args.get("lang") or request.cookies.get("lang")
    return wanted if wanted in LOCALES else "zh_CN"


def lang_url(lang: str) -> str:
    """This page in another language, keeping its query (e.g. a pending login's interaction)."""
    args = request.args.to_dict()
    args["lang"] = lang
    return f"{request.path}?{urlencode(args)}"


def init_app(app: Flask) -> None:
    app.before_request(keep_form_body)  # before CSRFProtect parses the form
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale, default_locale="zh_CN")
    app.jinja_env.globals["get_locale"] = get_locale
    app.jinja_env.globals["lang_url"] = lang_url
    app.before_request(
        refresh
    )  # the locale is per request, even where an app context spans several

    @app.after_request
    def remember_locale(response):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN202
        lang = request.args.get("lang")
        if lang in LOCALES:
            response.set_cookie("lang", lang, max_age=365 * 86400, samesite="Lax", httponly=True)
        return response
