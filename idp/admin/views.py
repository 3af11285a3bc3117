"""The platform administration console under ``/admin/`` (docs/admin.md).

Deny by default: the blueprint's guard admits only a live platform admin session, except on
the login pages (``PUBLIC``). Operators and org admins hold a different cookie and are sent
to the admin login like anyone else. Login is username + password, then a TOTP code (or, once
each, a recovery code); the first login enrols the authenticator instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Blueprint, g, redirect, render_template, request, session, url_for
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from markupsafe import Markup
from werkzeug.wrappers import Response as BaseResponse

from idp import db, forms, web
from idp.admin import accounts
from idp.admin import session as admin_session
from idp.admin.forms import AdminLoginForm, TotpForm
from idp.admin.models import PlatformAdmin
from idp.db import utcnow
from idp.errors import IdpError

bp = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates")

PUBLIC = frozenset({"admin.login", "admin.login_code", "admin.enrol"})
PENDING = "admin_pending"  # the Flask session entry after a right password, before the code
PENDING_SECONDS = 5 * 60


class PendingLoginExpiredError(IdpError):
    code = "admin_login_expired"
    status = 400
    message = _l("登录已超时，请重新输入用户名和密码")


@bp.before_request
def require_admin() -> BaseResponse | None:
    """Every admin page but the login ones needs a live session of an existing admin."""
    if request.endpoint in PUBLIC:
        return None
    login = admin_session.current()
    admin = db.session().get(PlatformAdmin, login.admin_id) if login else None
    if login is None or admin is None or not admin.totp_confirmed:
        if login is not None:
            admin_session.end_current()
        return redirect(url_for("admin.login"))
    g.platform_admin = admin
    return None


def current_admin() -> PlatformAdmin:
    value: PlatformAdmin = g.platform_admin
    return value


def actor() -> str:
    return f"platform_admin:{current_admin().username}"


def requires_step_up(view: Callable[..., Any]) -> Callable[..., Any]:
    """Destructive actions: a TOTP code entered within ``IDP_ADMIN_STEP_UP_SECONDS``."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        login = admin_session.current()
        if login is None or not admin_session.stepped_up(login):
            return redirect(url_for("admin.step_up", next=request.path))
        return view(*args, **kwargs)

    return wrapper


# --- login ----------------------------------------------------------------------------------------


def pending_admin() -> PlatformAdmin | None:
    """The admin whose password was right in the last few minutes in this browser."""
    pending = session.get(PENDING)
    if not isinstance(pending, dict):
        return None
    if utcnow().timestamp() - float(pending.get("at", 0)) > PENDING_SECONDS:
        session.pop(PENDING, None)
        return None
    return db.session().get(PlatformAdmin, int(pending.get("id", 0)))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    form = AdminLoginForm()
    error, status = "", 200
    if form.validate_on_submit():
        try:
            admin = accounts.check_password(
                db.session(), username=form.username.data or "", password=form.password.data or ""
            )
        except IdpError as refusal:
            error, status = web.refuse(refusal, form)
            db.session().commit()  # the failed attempt's audit event
        else:
            session[PENDING] = {"id": admin.id, "at": utcnow().timestamp()}
            db.session().commit()
            target = "admin.login_code" if admin.totp_confirmed else "admin.enrol"
            return redirect(url_for(target))
    elif request.method == "POST":
        status = 400
    return render_template("admin/login.html", form=form, error=error), status


def _finish_login(admin: PlatformAdmin, method: str) -> None:
    session.pop(PENDING, None)
    accounts.logged_in(admin, method)
    admin_session.start(admin.id, admin.username)


@bp.route("/login/code", methods=["GET", "POST"])
def login_code() -> Any:
    admin = pending_admin()
    if admin is None:
        return redirect(url_for("admin.login"))
    if not admin.totp_confirmed:
        return redirect(url_for("admin.enrol"))
    form = TotpForm()
    error, status = "", 200
    if form.validate_on_submit():
        try:
            method = accounts.check_second_factor(admin, form.code.data or "", allow_recovery=True)
        except IdpError as refusal:
            error, status = web.refuse(refusal, form)
            db.session().commit()
        else:
            _finish_login(admin, method)
            db.session().commit()
            return redirect(url_for("admin.index"))
    elif request.method == "POST":
        status = 400
    return render_template("admin/login_code.html", form=form, error=error), status


def qr_svg(uri: str) -> Markup:
    """The otpauth URI as an inline SVG QR code, made here (the secret never leaves the page)."""
    import segno  # here: only enrolment draws one, and every worker would hold it (~1 MiB)

    return Markup(segno.make(uri, error="m").svg_inline(scale=4, border=2))  # noqa: S704


@bp.route("/enrol", methods=["GET", "POST"])
def enrol() -> Any:
    """First login: scan the QR code (or type the secret), confirm with a code, then the
    recovery codes are shown, this once."""
    admin = pending_admin()
    if admin is None:
        return redirect(url_for("admin.login"))
    if admin.totp_confirmed:
        return redirect(url_for("admin.login_code"))
    form = TotpForm()
    error, status = "", 200
    if form.validate_on_submit():
        try:
            codes = accounts.confirm_enrolment(admin, form.code.data or "")
        except IdpError as refusal:
            error, status = web.refuse(refusal, form)
            db.session().commit()
        else:
            _finish_login(admin, "otp")
            db.session().commit()
            return render_template("admin/recovery_codes.html", codes=codes)
    elif request.method == "POST":
        status = 400
    uri = accounts.provisioning_uri(admin)
    db.session().commit()  # the secret being enrolled stays the same on a reload
    return render_template(
        "admin/enrol.html",
        form=form,
        error=error,
        qr=qr_svg(uri),
        secret=admin.totp_secret,
    ), status


@bp.route("/step-up", methods=["GET", "POST"])
def step_up() -> Any:
    """Re-enter a TOTP code before a destructive action (recovery codes do not count)."""
    next_path = request.args.get("next", "")
    if not next_path.startswith("/admin/") or next_path.startswith("//"):
        next_path = url_for("admin.index")
    form = TotpForm()
    error, status = "", 200
    if form.validate_on_submit():
        try:
            accounts.check_second_factor(
                current_admin(), form.code.data or "", allow_recovery=False
            )
        except IdpError as refusal:
            error, status = web.refuse(refusal, form)
            db.session().commit()
        else:
            login = admin_session.current()
            if login is not None:
                admin_session.mark_stepped_up(login)
            db.session().commit()
            return redirect(next_path)
    elif request.method == "POST":
        status = 400
    return render_template(
        "admin/step_up.html", form=form, error=error, next_path=next_path
    ), status


@bp.post("/logout")
def logout() -> BaseResponse:
    from idp import audit

    audit.record("admin.logout", actor=actor())
    db.session().commit()
    admin_session.end_current()
    return redirect(url_for("admin.login"))


# --- console --------------------------------------------------------------------------------------


@bp.get("/")
def index() -> str:
    admin = current_admin()
    return render_template(
        "admin/index.html", admin=admin, recovery_left=len(admin.recovery_codes), form=FlaskForm()
    )


@bp.route("/recovery-codes", methods=["GET", "POST"])
@requires_step_up
def recovery_codes() -> Any:
    """New recovery codes (the old ones stop working): a destructive action, after step-up."""
    if forms.showing():  # POST is checked for CSRF by the app (CSRFProtect)
        return render_template("admin/recovery_codes_confirm.html", form=FlaskForm())
    codes = accounts.new_recovery_codes(current_admin())
    db.session().commit()
    return render_template("admin/recovery_codes.html", codes=codes)
