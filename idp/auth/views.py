"""Operator login (journey 4): phone + password + SMS code, forced password change, logout."""

from __future__ import annotations

from flask import Blueprint, Response, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from idp import audit, context, db, forms, web
from idp import request_params as params
from idp.auth import (
    agent_dist,
    agent_help,
    cert_login,
    continuation,
    password_reset,
    service,
    session,
    sms_requests,
)
from idp.auth.cert.errors import CertificateLoginError
from idp.auth.client import current_client, ensure_browser_id
from idp.auth.errors import LoginFailedError
from idp.auth.forms import OperatorLoginForm, PasswordChangeForm, PasswordResetForm
from idp.config import settings
from idp.errors import IdpError
from idp.identity.eligibility import has_registrations, load_principal
from idp.identity.models import Account
from idp.web import render_error

bp = Blueprint("auth", __name__, template_folder="templates")

# The login forms and the UKey endpoints have single-valued fields only: a malformed or
# repeated one is refused before any form reads it (docs/protocol.md P19).
RAW_CHECKED = frozenset(
    {"auth.login", "auth.send_sms_code", "auth.cert_challenge", "auth.cert_login_submit"}
)


@bp.before_request
def refuse_malformed_parameters() -> Response | None:
    flask_request = context.request()
    if flask_request.method != "POST" or flask_request.endpoint not in RAW_CHECKED:
        return None
    try:
        params.check_request_parameters(field_checks=True)
    except params.MalformedParameterError:
        return render_error(
            code="invalid_request", status=400, message=_("请求无效，请刷新页面后重试")
        )
    return None


INTERACTION_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def interaction_id() -> str:
    """The pending authorization request this login belongs to (an opaque store key)."""
    value = context.request().values.get("interaction", "")
    return value if len(value) <= 64 and set(value) <= INTERACTION_CHARS else ""


def after_login_url(account: Account, interaction: str) -> str:
    if account.must_change_password:
        return url_for("auth.change_password", interaction=interaction or None)
    if interaction:
        return continuation.hand_back_url(interaction)
    return url_for("portal.index")


def render_login(
    form: OperatorLoginForm, *, status: int = 200, method: str = "operator", cert_error: str = ""
) -> tuple[str, int]:
    """The login page with its two tabs: operator (phone) and UKey certificate."""
    return render_template(
        "auth/login.html",
        form=form,
        method=method,
        cert_error=cert_error,
        interaction=interaction_id(),
        agent_url=settings().ukey_agent_url,
        agent_download_url=settings().ukey_agent_download_url,
    ), status


@bp.route("/login", methods=["GET", "POST"])
def login() -> tuple[str, int] | BaseResponse:
    form = OperatorLoginForm()
    status = 200
    if forms.showing():
        form.phone.data = request.args.get("phone", "")[:11]
        form.interaction.data = interaction_id()
        ensure_browser_id()
        method = "cert" if request.args.get("method") == "cert" else "operator"
        return render_login(form, method=method)
    if form.validate_on_submit():
        try:
            account = service.authenticate_operator(
                db.session(),
                phone=form.phone.data,
                password=form.password.data,
                sms_code=form.sms_code.data,
                client=current_client(),
            )
        except LoginFailedError as error:
            getattr(form, error.field).errors.append(str(error.message))
            status = error.status
        else:
            session.start(
                account_id=account.id,
                kind="operator",
                amr=service.OPERATOR_AMR,
                acr=service.OPERATOR_ACR,
                credential_version=account.credential_version,
                started_for=interaction_id(),
            )
            return redirect(after_login_url(account, interaction_id()))
    else:
        status = 400
    return render_login(form, status=status)


@bp.post("/login/cert/challenge")
def cert_challenge() -> Response:
    """A one-time challenge for the UKey agent to sign (docs/ukey-protocol.md §1)."""
    return jsonify(
        challenge=cert_login.issue_challenge(),
        expires_in=int(cert_login.CHALLENGE_TTL.total_seconds()),
    )


@bp.post("/login/cert")
def cert_login_submit() -> tuple[str, int] | BaseResponse:
    """The agent's signed answer, posted by the login page (docs/ukey-protocol.md §3)."""
    try:
        login = cert_login.log_in(
            db.session(), request.form.to_dict(), started_for=interaction_id()
        )
    except CertificateLoginError as error:
        return render_login(
            OperatorLoginForm(formdata=None),
            status=error.status,
            method="cert",
            cert_error=str(error.message),
        )
    if login.org_id is None or not has_registrations(db.session(), login.org_id):
        continuation.wait_for_registration(interaction_id())
        return redirect(url_for("orgs.register"))
    if interaction_id():
        return redirect(continuation.hand_back_url(interaction_id()))
    return redirect(url_for("portal.index"))


@bp.get("/ukey/agent")
def ukey_agent() -> str:
    """客户端工具: download, three steps, whether it runs, troubleshooting (for end users)."""
    config = settings()
    trailer = agent_dist.stamp(config.issuer, config.ukey_agent_url)
    return render_template(
        "auth/ukey_agent.html",
        agent_url=config.ukey_agent_url,
        downloads=agent_dist.list_files(config.agent_dist_dir, trailer),
        dist_configured=agent_dist.is_configured(config.agent_dist_dir),
        troubles=agent_help.TROUBLES,
    )


@bp.get("/ukey/agent/download/<name>")
def ukey_agent_download(name: str) -> Response:
    """One agent bundle, stamped with this provider's origin (the configured issuer)."""
    config = settings()
    trailer = agent_dist.stamp(config.issuer, config.ukey_agent_url)
    found = agent_dist.find_file(config.agent_dist_dir, name, trailer)
    if found is None:
        return render_error(code="not_found", status=404, message=_("没有这个下载文件"))
    response = Response(agent_dist.stream(found, trailer), mimetype="application/octet-stream")
    response.headers["Content-Length"] = str(found.size)
    response.headers["Content-Disposition"] = f"attachment; filename={found.name}"
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.post("/login/sms-code")
def send_sms_code() -> tuple[Response, int]:
    """Send a login code. The answer is the same whether or not the phone has an account."""
    return sms_requests.answer(
        lambda phone: service.request_login_code(phone=phone, client=current_client())
    )


@bp.route("/password/change", methods=["GET", "POST"])
def change_password() -> tuple[str, int] | BaseResponse:
    login = session.current()
    principal = load_principal(db.session(), login)
    account = principal.account if principal is not None else None
    if login is None or account is None:
        return redirect(url_for("auth.login", interaction=interaction_id() or None))
    form = PasswordChangeForm()
    status = 200
    if form.validate_on_submit():
        try:
            version = service.change_password(
                db.session(),
                account,
                current=form.current_password.data,
                new=form.new_password.data,
            )
        except LoginFailedError as error:
            getattr(form, error.field).errors.append(str(error.message))
            status = error.status
        except service.PasswordPolicyError as error:
            form.new_password.errors.extend(error.errors)
            status = 400
        else:
            finish_password_change(login, account, version)
            return redirect(after_login_url(account, interaction_id()))
    elif request.method == "POST":
        status = 400
    return render_template(
        "auth/change_password.html",
        form=form,
        forced=account.must_change_password,
        interaction=interaction_id(),
    ), status


def finish_password_change(login: session.LoginSession, account: Account, version: int) -> None:
    """Commit the change first: the SQL store may share the database, whose write lock the
    change holds until then. Then this session keeps going on the new credentials, and the
    phone hears of the change."""
    db.session().commit()
    session.restamp(login, version)
    service.notify_password_changed(account)


@bp.route("/password/forgot", methods=["GET", "POST"])
def forgot_password() -> tuple[str, int] | BaseResponse:
    """忘记密码: phone and SMS code, the name on record, a new password; then the login page."""
    form = PasswordResetForm()
    error, status = "", 200
    if forms.showing():
        form.phone.data = request.args.get("phone", "")[:11]
        form.interaction.data = interaction_id()
        ensure_browser_id()
    elif form.validate_on_submit():
        try:
            account = password_reset.reset_password(
                db.session(),
                phone=form.phone.data,
                sms_code=form.sms_code.data,
                name=form.name.data,
                new=form.new_password.data,
                client=current_client(),
            )
        except service.PasswordPolicyError as failure:
            web.rollback()
            form.new_password.errors.extend(failure.errors)
            status = 400
        except IdpError as failure:  # the code, the name, the limits, the real-name service
            error, status = web.refuse(failure, form)
        else:
            db.session().commit()
            password_reset.lift_lock(account.phone)
            flash(_("密码已重置，请使用新密码登录"), "success")
            return redirect(
                url_for("auth.login", phone=account.phone, interaction=interaction_id() or None)
            )
    else:
        status = 400
    return render_template(
        "auth/forgot_password.html", form=form, error=error, interaction=interaction_id()
    ), status


@bp.post("/password/forgot/sms-code")
def send_reset_code() -> tuple[Response, int]:
    """Send a reset code. The answer is the same whether or not the phone has an account."""
    return sms_requests.answer(
        lambda phone: password_reset.request_reset_code(phone=phone, client=current_client())
    )


@bp.route("/logout", methods=["GET", "POST"])
def logout() -> str | BaseResponse:
    if request.method == "POST":  # CSRF-checked like every form (CSRFProtect)
        if (login := session.log_out()) is not None:
            audit.record("auth.logged_out", actor=f"account:{login.account_id}")
        return render_template("auth/logged_out.html")
    return render_template("auth/logout.html", logged_in=session.current() is not None)
