"""The platform's look as settings: name, logo, favicon and the footer lines a government site
carries (主办单位, 技术支持, 服务热线, ICP备案号, 帮助). Pages read them through ``brand``."""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint, Flask, Response, send_file
from flask_babel import get_locale
from flask_babel import gettext as _

from idp.config import settings

bp = Blueprint("brand", __name__)

BUILT_IN = Path(__file__).parent / "static" / "brand"
MAX_AGE = 86400


@dataclass(frozen=True)
class Brand:
    name: str
    sponsor: str
    support: str
    hotline: str
    icp: str
    help_url: str


def current_brand() -> Brand:
    config = settings()
    english = str(get_locale()) == "en"
    name = (config.brand_name_en if english else "") or config.brand_name or _("统一认证登录平台")
    return Brand(
        name=name,
        sponsor=config.footer_sponsor,
        support=config.footer_support,
        hotline=config.footer_hotline,
        icp=config.footer_icp,
        help_url=config.help_url,
    )


def image_file(configured: Path, built_in: str) -> Path:
    """The configured image, or the project's own when none is set."""
    return configured if str(configured) not in {"", "."} else BUILT_IN / built_in


def send_image(path: Path) -> Response:
    response = send_file(
        path, mimetype=mimetypes.guess_type(path.name)[0], max_age=MAX_AGE, conditional=True
    )
    # An SVG opened on its own must not run script (a configured file is trusted, still).
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response


@bp.get("/brand/logo")
def logo() -> Response:
    return send_image(image_file(settings().brand_logo, "logo.svg"))


@bp.get("/brand/favicon")
def favicon() -> Response:
    return send_image(image_file(settings().brand_favicon, "favicon.svg"))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.context_processor(lambda: {"brand": current_brand()})
