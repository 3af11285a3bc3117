"""The org admin console (docs/design.md journey 3, manual §1.3): 操作员管理 (list, 【增加】, 【查询】,
【修改】, 【删除】), 用户审核 (通过 / 驳回) and the org's audit trail, under ``/org/``.

Deny by default: the blueprint's guard admits only the org admin of a registered organisation
(a certificate login whose organisation holds a registration); every page acts on that
organisation only, and another organisation's ids are unknown (404). Views parse, call one
service function (``idp.orgs.operators``, ``idp.orgs.reviews``) and render.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response as BaseResponse

from idp import db, web
from idp.audit import wording
from idp.audit.queries import list_org_events
from idp.auth import session as login_session
from idp.console.forms import ConfirmForm, OperatorAddForm, OperatorEditForm, RejectForm
from idp.errors import IdpError
from idp.identity.eligibility import has_registrations, load_principal
from idp.identity.models import Organisation
from idp.oidc.clients import list_clients
from idp.orgs import operators, reviews

bp = Blueprint("console", __name__, url_prefix="/org", template_folder="templates")

PER_PAGE = 20
CHINA_TIME = timezone(timedelta(hours=8))  # the console shows Beijing time; stored in UTC


class ConsoleForbiddenError(IdpError):
    code = "org_admin_required"
    status = 403
    message = _l("仅企业管理员可以使用此功能，请使用企业 UKey 登录")


@bp.before_request
def require_org_admin() -> BaseResponse | None:
    """Only the admin of a registered organisation; nobody logged in → the UKey login."""
    login = login_session.current()
    if login is None:
        return redirect(url_for("auth.login", method="cert"))
    if login.kind != "org_admin":
        principal = load_principal(db.session(), login)
        if principal is None:  # an operator whose last membership ended
            return redirect(url_for("auth.login", method="cert"))
        raise ConsoleForbiddenError()
    principal = load_principal(db.session(), login)
    if principal is None or principal.org is None:
        return redirect(url_for("orgs.register"))  # certificate login of an unregistered org
    if not has_registrations(db.session(), principal.org.id):
        return redirect(url_for("orgs.register"))
    g.console_org = principal.org
    g.console_actor = principal.actor
    return None


def current_org() -> Organisation:
    value: Organisation = g.console_org
    return value


def current_actor() -> str:
    value: str = g.console_actor
    return value


@bp.app_template_filter("console_time")
def console_time(value: datetime | None) -> str:
    return value.astimezone(CHINA_TIME).strftime("%Y-%m-%d %H:%M") if value else "—"


@bp.context_processor
def console_helpers() -> dict[str, object]:
    return {
        "page_url": page_url,
        "created_by_label": created_by_label,
        "describe_event": describe_event,
        "event_result": wording.result_words,
    }


def describe_event(action: str, target: str) -> str:
    """An audit event in words, relying parties by their names."""
    if "client_names" not in g:
        g.client_names = {c.client_id: c.name for c in list_clients(db.session())}
    return wording.describe(action, target, g.client_names)


def page_url(number: int) -> str:
    """This list page with the same filters at page ``number``."""
    args: dict[str, Any] = {**(request.view_args or {}), **request.args.to_dict()}
    args["page"] = number
    return url_for(str(request.endpoint), **args)


def created_by_label(created_by: str) -> str:
    if created_by.startswith("org_admin:"):
        return _("企业管理员")
    if created_by == "cli":
        return _("平台管理员")
    return created_by


def page_arg() -> int:
    return request.args.get("page", 1, type=int) or 0


def read_only_fields(form: FlaskForm) -> dict[str, str]:
    """What was posted besides the form's own fields, for the service to refuse (修改 changes
    only phone and status). A posted ``actor`` goes under another key: it must not stand in for
    the real one."""
    extra = {name: request.form.get(name, "") for name in request.form if name not in form}
    if "actor" in extra:
        extra["posted_actor"] = extra.pop("actor")
    return extra


# --- 操作员管理 ---------------------------------------------------------------------------------


@bp.get("/")
def index() -> BaseResponse:
    return redirect(url_for("console.operators_list"))


@bp.get("/operators")
def operators_list() -> str:
    """The list with search (name or phone), status filter and pages; phones masked."""
    query, status = request.args.get("q", ""), request.args.get("status", "")
    page = operators.list_operators(
        db.session(), current_org(), query=query, status=status, page=page_arg(), per_page=PER_PAGE
    )
    return render_template("console/operators.html", page=page, query=query, status=status)


@bp.route("/operators/new", methods=["GET", "POST"])
def operator_add() -> tuple[str, int] | BaseResponse:
    """【增加】 → 【保存】: real-name check, account, initial password by SMS."""
    form = OperatorAddForm()
    error, status = "", 200
    if form.validate_on_submit():
        try:
            added = operators.add_operator(
                db.session(),
                current_org(),
                name=form.name.data,
                phone=form.phone.data,
                actor=current_actor(),
            )
        except IdpError as failure:
            error, status = web.refuse(failure, form)
        else:
            flash(_("保存成功"), "success")
            if added.initial_password_sent:
                flash(_("初始密码已通过短信发送"), "success")
            else:
                flash(_("该手机号已有账户，已短信通知其使用现有密码登录"), "success")
            return redirect(url_for("console.operator_detail", membership_id=added.operator.id))
    elif request.method == "POST":
        status = 400
    return render_template("console/operator_new.html", form=form, error=error), status


@bp.get("/operators/<int:membership_id>")
def operator_detail(membership_id: int) -> str:
    """【查询】: the details, with the full phone number."""
    operator = operators.get_operator(db.session(), current_org(), membership_id)
    return render_template("console/operator_detail.html", operator=operator)


@bp.route("/operators/<int:membership_id>/edit", methods=["GET", "POST"])
def operator_edit(membership_id: int) -> tuple[str, int] | BaseResponse:
    """【修改】: phone and status only; the other fields are shown read-only."""
    operator = operators.get_operator(db.session(), current_org(), membership_id)
    form = OperatorEditForm(data={"phone": operator.phone, "status": operator.status})
    error, status = "", 200
    if form.validate_on_submit():
        try:
            operator = operators.update_operator(
                db.session(),
                current_org(),
                membership_id,
                phone=form.phone.data,
                status=form.status.data,
                actor=current_actor(),
                **read_only_fields(form),
            )
        except IdpError as failure:
            error, status = web.refuse(failure, form)
        else:
            flash(_("保存成功"), "success")
            return redirect(url_for("console.operator_detail", membership_id=membership_id))
    elif request.method == "POST":
        status = 400
    return render_template(
        "console/operator_edit.html", form=form, operator=operator, error=error
    ), status


@bp.route("/operators/<int:membership_id>/delete", methods=["GET", "POST"])
def operator_delete(membership_id: int) -> tuple[str, int] | BaseResponse:
    """【删除】 after a confirmation: the account becomes unusable for this org."""
    operator = operators.get_operator(db.session(), current_org(), membership_id)
    form = ConfirmForm()
    error, status = "", 200
    if form.validate_on_submit():
        try:
            operators.delete_operator(
                db.session(), current_org(), membership_id, actor=current_actor()
            )
        except IdpError as failure:
            error, status = web.refuse(failure, form)
        else:
            flash(_("删除成功"), "success")
            return redirect(url_for("console.operators_list"))
    return render_template(
        "console/operator_delete.html", form=form, operator=operator, error=error
    ), status


# --- 用户审核 -----------------------------------------------------------------------------------


@bp.get("/reviews")
def reviews_list() -> str:
    """The org's join requests (pending first by default), with 通过 and 驳回."""
    status = request.args.get("status", "pending")
    page = reviews.list_join_requests(
        db.session(), current_org(), status=status, page=page_arg(), per_page=PER_PAGE
    )
    return render_template("console/reviews.html", page=page, status=status)


@bp.route("/reviews/<int:request_id>/approve", methods=["GET", "POST"])
def review_approve(request_id: int) -> tuple[str, int] | BaseResponse:
    """通过 after a look at the request: the applicant becomes an operator, initial password
    by SMS."""
    applicant = reviews.get_join_request(db.session(), current_org(), request_id)
    form = ConfirmForm()
    error, status = "", 200
    if form.validate_on_submit():
        try:
            added = reviews.approve(db.session(), current_org(), request_id, actor=current_actor())
        except IdpError as failure:
            error, status = web.refuse(failure, form)
        else:
            flash(_("已通过，操作员账号已开通"), "success")
            if added.initial_password_sent:
                flash(_("初始密码已通过短信发送"), "success")
            return redirect(url_for("console.reviews_list"))
    return render_template(
        "console/review_approve.html", form=form, applicant=applicant, error=error
    ), status


@bp.route("/reviews/<int:request_id>/reject", methods=["GET", "POST"])
def review_reject(request_id: int) -> tuple[str, int] | BaseResponse:
    """驳回 with a reason, which the applicant receives by SMS."""
    applicant = reviews.get_join_request(db.session(), current_org(), request_id)
    form = RejectForm()
    error, status = "", 200
    if form.validate_on_submit():
        try:
            reviews.reject(
                db.session(),
                current_org(),
                request_id,
                reason=form.reason.data,
                actor=current_actor(),
            )
        except IdpError as failure:
            error, status = web.refuse(failure, form)
        else:
            flash(_("已驳回，已短信通知申请人"), "success")
            return redirect(url_for("console.reviews_list"))
    elif request.method == "POST":
        status = 400
    return render_template(
        "console/review_reject.html", form=form, applicant=applicant, error=error
    ), status


# --- 操作日志 -----------------------------------------------------------------------------------


@bp.get("/audit")
def audit_log() -> str:
    """The org's audit events, newest first."""
    page = list_org_events(db.session(), current_org().id, page=page_arg(), per_page=PER_PAGE)
    return render_template("console/audit.html", page=page)
