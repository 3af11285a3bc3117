"""/account (我的账户): what a logged-in operator or organisation admin can see and end of
their own: the profile, the password (operators), the live login sessions, the relying parties
they consented to, and their recent sign-ins. Every action is a POST with the page's CSRF token
and acts only on the person's own sessions and consents."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse
from wtforms import HiddenField
from wtforms.validators import DataRequired, Length

from idp import audit, db
from idp.audit import wording
from idp.audit.queries import recent_sign_ins
from idp.auth import service
from idp.auth import session as login_session
from idp.auth.errors import LoginFailedError
from idp.auth.forms import PasswordChangeForm
from idp.auth.views import finish_password_change
from idp.errors import IdpError
from idp.identity.eligibility import load_principal
from idp.identity.models import Membership, MembershipStatus, Organisation
from idp.identity.principal import Principal
from idp.oidc import consents
from idp.security import mask_phone

bp = Blueprint("account", __name__, template_folder="templates")


class AccountSessionNotFoundError(IdpError):
    """The session to end is not one of this person's live sessions."""

    code = "account_session_not_found"
    status = 404
    message = _l("没有找到该登录会话，它可能已经结束。")


class AccountConsentNotFoundError(IdpError):
    """The consent to revoke is not one this person gave."""

    code = "account_consent_not_found"
    status = 404
    message = _l("没有找到对该应用的授权，它可能已被撤销。")


class PasswordNotForOrgAdminError(IdpError):
    code = "password_not_for_org_admin"
    status = 403
    message = _l("企业管理员使用 UKey 登录，没有密码可修改。")


class EndSessionForm(FlaskForm):
    sid = HiddenField(validators=[DataRequired(), Length(max=64)])


class RevokeConsentForm(FlaskForm):
    client_id = HiddenField(validators=[DataRequired(), Length(max=64)])


@dataclass(frozen=True)
class Affiliation:
    """An organisation the person acts for, and as what."""

    org_name: str
    org_types: list[str]
    role: str


@dataclass(frozen=True)
class SessionRow:
    sid: str
    device: str
    ip: str
    started: datetime
    last_seen: datetime
    current: bool


@dataclass(frozen=True)
class SignInRow:
    time: datetime
    method: str
    ip: str
    outcome: str
    succeeded: bool


# Browser and system names found in a User-Agent, the first match counting (Edge and the
# Chinese browsers also name Chrome and Safari, so they come first).
BROWSERS = (
    ("Edg/", "Edge"),
    ("MicroMessenger", _l("微信")),
    ("QQBrowser", _l("QQ 浏览器")),
    ("360SE", _l("360 浏览器")),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)
SYSTEMS = (
    ("Windows", "Windows"),
    ("Android", "Android"),
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


def device_summary(user_agent: str) -> str:
    """ "Chrome · Windows": the browser and system a session was opened with, in brief."""
    browser = next((str(name) for mark, name in BROWSERS if mark in user_agent), "")
    system = next((name for mark, name in SYSTEMS if mark in user_agent), "")
    found = " · ".join(part for part in (browser, system) if part)
    return found or _("未知浏览器")


def _time(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)


def _logged_in() -> tuple[login_session.LoginSession, Principal] | None:
    login = login_session.current()
    principal = load_principal(db.session(), login)
    if login is None or principal is None:
        return None
    return login, principal


def affiliations(principal: Principal) -> list[Affiliation]:
    if principal.org is not None:
        return [_affiliation(principal.org, role=_("企业管理员"))]
    account_id = principal.account.id if principal.account else None
    memberships = db.session().scalars(
        select(Membership)
        .where(Membership.account_id == account_id, Membership.status == MembershipStatus.ACTIVE)
        .order_by(Membership.id)
    )
    return [_affiliation(membership.org, role=_("操作员")) for membership in memberships]


def _affiliation(org: Organisation, *, role: str) -> Affiliation:
    types = [identity.org_type.label for identity in org.identities]
    return Affiliation(org_name=org.name, org_types=types, role=role)


def session_rows(login: login_session.LoginSession) -> list[SessionRow]:
    return [
        SessionRow(
            sid=other.sid,
            device=device_summary(other.user_agent),
            ip=other.ip or "—",
            started=_time(other.created_at),
            last_seen=_time(other.last_seen or other.created_at),
            current=other.id == login.id,
        )
        for other in login_session.sessions_of(login.holder)
    ]


def sign_in_rows(principal: Principal) -> list[SignInRow]:
    events = recent_sign_ins(
        db.session(),
        account_id=principal.account.id if principal.account else None,
        org_id=principal.org.id if principal.org else None,
    )
    return [
        SignInRow(
            time=event.time,
            method=_("UKey 证书")
            if event.action.startswith("auth.cert_")
            else _("密码＋短信验证码"),
            ip=event.ip or "—",
            outcome=wording.result_words(event.result),
            succeeded=event.result == "success",
        )
        for event in events
    ]


def render_account(
    login: login_session.LoginSession,
    principal: Principal,
    *,
    password_form: PasswordChangeForm | None = None,
    status: int = 200,
) -> tuple[str, int]:
    return render_template(
        "account/index.html",
        principal=principal,
        masked_phone=mask_phone(principal.phone) if principal.phone else "",
        affiliations=affiliations(principal),
        password_form=password_form or PasswordChangeForm(formdata=None),
        sessions=session_rows(login),
        remembered=consents.remembered(db.session(), consents.Holder.of(principal)),
        scope_words=consents.scope_words,
        sign_ins=sign_in_rows(principal),
        form=FlaskForm(),
    ), status


@bp.get("/account")
def index() -> BaseResponse | tuple[str, int]:
    found = _logged_in()
    if found is None:
        return redirect(url_for("auth.login"))
    login, principal = found
    if principal.must_change_password:
        return redirect(url_for("auth.change_password"))
    return render_account(login, principal)


@bp.post("/account/password")
def change_password() -> BaseResponse | tuple[str, int]:
    """The operator's password, as /password/change changes it: the current one proved, the
    same policy; every other session and every token of the account end."""
    found = _logged_in()
    if found is None:
        return redirect(url_for("auth.login"))
    login, principal = found
    account = principal.account
    if account is None:
        raise PasswordNotForOrgAdminError()
    form = PasswordChangeForm()
    if not form.validate_on_submit():
        return render_account(login, principal, password_form=form, status=400)
    try:
        version = service.change_password(
            db.session(), account, current=form.current_password.data, new=form.new_password.data
        )
    except LoginFailedError as error:
        getattr(form, error.field).errors.append(str(error.message))
        return render_account(login, principal, password_form=form, status=error.status)
    except service.PasswordPolicyError as error:
        form.new_password.errors.extend(error.errors)
        return render_account(login, principal, password_form=form, status=400)
    finish_password_change(login, account, version)
    flash(_("密码已修改，您在其他设备上的登录已退出。"), "success")
    return redirect(url_for("account.index"))


@bp.post("/account/sessions/end")
def end_session() -> BaseResponse:
    """退出 on one of the person's sessions: it ends as its logout would (its tokens end, its
    relying parties are told); this session's own row logs this browser out."""
    found = _logged_in()
    if found is None:
        return redirect(url_for("auth.login"))
    login, principal = found
    form = EndSessionForm()
    if not form.validate_on_submit():
        raise AccountSessionNotFoundError()
    sid = form.sid.data
    ended = login_session.end_listed(login.holder, sid)
    audit.record(
        "auth.session_ended",
        actor=principal.actor,
        target=f"session:{sid[:8]}",
        result="success" if ended is not None else AccountSessionNotFoundError.code,
        org_id=principal.org.id if principal.org else None,
    )
    if ended is None:
        raise AccountSessionNotFoundError()
    if ended.id == login.id:
        return redirect(url_for("auth.login"))
    flash(_("已退出该登录会话。"), "success")
    return redirect(url_for("account.index"))


@bp.post("/account/consents/revoke")
def revoke_consent() -> BaseResponse:
    """撤销授权: the relying party asks for consent again next time; what it holds ends."""
    found = _logged_in()
    if found is None:
        return redirect(url_for("auth.login"))
    _login, principal = found
    form = RevokeConsentForm()
    if not form.validate_on_submit():
        raise AccountConsentNotFoundError()
    holder = consents.Holder.of(principal)
    if not consents.revoke(db.session(), holder, form.client_id.data, actor=principal.actor):
        raise AccountConsentNotFoundError()
    flash(_("已撤销授权，该应用下次需要重新征得您的同意。"), "success")
    return redirect(url_for("account.index"))
