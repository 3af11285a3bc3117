"""【公共部分-系统管理】 of the demo relying party: 操作员管理 and 用户审核 (docs/design.md, manual §1.3), for the
logged-in org admin, through the provider's management API (``management.call``).

The pages only collect input and show answers: every check (the real-name check, duplicate
phones, read-only fields, decided requests) is the provider's, and its messages are shown as
they come. Forms are POSTed with the session's CSRF token (``security.check_csrf``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from . import management, oidc
from .app import BEIJING
from .errors import RpError
from .management import ManagementApiError

bp = Blueprint("system", __name__, url_prefix="/system")

OPERATOR_STATUSES = {"active": "启用", "disabled": "停用", "deleted": "已删除"}
REVIEW_STATUSES = {
    "pending": "待审核",
    "approved": "已通过",
    "rejected": "已驳回",
    "expired": "已过期",
    "all": "全部",
}
MAX_QUERY = 50


@bp.before_request
def require_org_admin() -> ResponseReturnValue | None:
    """The menus are the org admin's: anyone else logged in is refused, nobody is sent to log in."""
    login = session.get(oidc.LOGIN_KEY)
    if not login:
        return redirect(url_for("maintenance_fund.login"))
    if (login.get("userinfo") or {}).get("role") != "org_admin":
        raise RpError("org_admin_required", status=403)
    return None


def api(method: str, path: str, **kwargs: Any) -> Any:
    return management.call(oidc.current_config(), method, path, **kwargs)


@bp.app_template_filter("beijing")
def beijing(value: str | None) -> str:
    """An API timestamp (RFC 3339) in Beijing time, minutes only; "—" when there is none."""
    if not value:
        return "—"
    return datetime.fromisoformat(value).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


@bp.context_processor
def labels() -> dict[str, Any]:
    return {
        "operator_statuses": OPERATOR_STATUSES,
        "review_statuses": REVIEW_STATUSES,
        "created_by_label": created_by_label,
        "page_url": page_url,
    }


def created_by_label(created_by: str) -> str:
    if created_by.startswith("org_admin:"):
        return "企业管理员"
    return "平台管理员" if created_by == "cli" else created_by


def page_url(number: int) -> str:
    """This list with the same filters at page ``number``."""
    args = {**request.args.to_dict(), "page": number}
    return url_for(str(request.endpoint), **args)


def page_arg() -> int:
    value = request.args.get("page", "1")
    return int(value) if value.isascii() and value.isdigit() and 0 < int(value) <= 100_000 else 1


def form_values(*names: str) -> dict[str, str]:
    return {name: request.form.get(name, "").strip() for name in names}


# --- 操作员管理 ---------------------------------------------------------------------------------


@bp.get("/")
def index() -> ResponseReturnValue:
    return redirect(url_for(".operators"))


@bp.get("/operators")
def operators() -> ResponseReturnValue:
    """The list: search by name or phone, status filter, pages; phones masked."""
    query = request.args.get("query", "").strip()[:MAX_QUERY]
    status = request.args.get("status", "")
    params: dict[str, Any] = {"page": page_arg()}
    if query:
        params["query"] = query
    if status in OPERATOR_STATUSES:
        params["status"] = status
    listing = api("GET", "/org/operators", params=params)
    return render_template("system/operators.html", listing=listing, query=query, status=status)


@bp.route("/operators/new", methods=["GET", "POST"])
def operator_add() -> ResponseReturnValue:
    """【增加】: name and phone go to the provider, which checks them and sends the password."""
    form, error, status = {"name": "", "phone": ""}, None, 200
    if request.method == "POST":
        form = form_values("name", "phone")
        try:
            added = api("POST", "/org/operators", json=form)
        except ManagementApiError as problem:
            error, status = problem, problem.status
        else:
            flash("保存成功")
            if added["initial_password_sent"]:
                flash("初始密码已通过短信发送")
            else:
                flash("该手机号已有账户，已短信通知其使用现有密码登录")
            return redirect(url_for(".operator_detail", ident=added["operator"]["id"]))
    return render_template("system/operator_new.html", form=form, error=error), status


@bp.get("/operators/<int:ident>")
def operator_detail(ident: int) -> ResponseReturnValue:
    """【查询】: the details, with the full phone number."""
    operator = api("GET", f"/org/operators/{ident}")
    return render_template("system/operator_detail.html", operator=operator)


@bp.route("/operators/<int:ident>/edit", methods=["GET", "POST"])
def operator_edit(ident: int) -> ResponseReturnValue:
    """【修改】: phone and status only; the rest is shown read-only."""
    operator = api("GET", f"/org/operators/{ident}")
    form = {"phone": operator["phone"], "status": operator["status"]}
    error, status = None, 200
    if request.method == "POST":
        form = form_values("phone", "status")
        try:
            api("PATCH", f"/org/operators/{ident}", json=form)
        except ManagementApiError as problem:
            error, status = problem, problem.status
        else:
            flash("保存成功")
            return redirect(url_for(".operator_detail", ident=ident))
    return render_template(
        "system/operator_edit.html", operator=operator, form=form, error=error
    ), status


@bp.route("/operators/<int:ident>/delete", methods=["GET", "POST"])
def operator_delete(ident: int) -> ResponseReturnValue:
    """【删除】 after a confirmation."""
    operator = api("GET", f"/org/operators/{ident}")
    error, status = None, 200
    if request.method == "POST":
        try:
            api("DELETE", f"/org/operators/{ident}")
        except ManagementApiError as problem:
            error, status = problem, problem.status
        else:
            flash("删除成功")
            return redirect(url_for(".operators"))
    return render_template("system/operator_delete.html", operator=operator, error=error), status


# --- 用户审核 -----------------------------------------------------------------------------------


@bp.get("/reviews")
def reviews() -> ResponseReturnValue:
    """Join requests, pending ones first by default, with 通过 and 驳回."""
    status = request.args.get("status", "pending")
    if status not in REVIEW_STATUSES:
        status = "pending"
    listing = api("GET", "/org/reviews", params={"status": status, "page": page_arg()})
    return render_template("system/reviews.html", listing=listing, status=status)


@bp.route("/reviews/<int:ident>/approve", methods=["GET", "POST"])
def review_approve(ident: int) -> ResponseReturnValue:
    """通过 after a look at the applicant."""
    return decide(ident, "approve", fields=())


@bp.route("/reviews/<int:ident>/reject", methods=["GET", "POST"])
def review_reject(ident: int) -> ResponseReturnValue:
    """驳回 with the reason the applicant receives by SMS."""
    return decide(ident, "reject", fields=("reason",))


def decide(ident: int, action: str, *, fields: tuple[str, ...]) -> ResponseReturnValue:
    applicant = api("GET", f"/org/reviews/{ident}")
    form, error, status = dict.fromkeys(fields, ""), None, 200
    if request.method == "POST":
        form = form_values(*fields)
        try:
            answer = api("POST", f"/org/reviews/{ident}/{action}", json=form if fields else None)
        except ManagementApiError as problem:
            error, status = problem, problem.status
        else:
            flash_decision(action, answer)
            return redirect(url_for(".reviews"))
    return render_template(
        f"system/review_{action}.html", applicant=applicant, form=form, error=error
    ), status


def flash_decision(action: str, answer: Mapping[str, Any]) -> None:
    if action == "reject":
        flash("已驳回，已短信通知申请人")
        return
    flash("已通过，操作员账号已开通")
    if answer.get("initial_password_sent"):
        flash("初始密码已通过短信发送")
