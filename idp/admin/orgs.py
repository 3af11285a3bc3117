"""机构管理 in the platform console: the organisations (search by USCC or name), one
organisation in full, and 暂停使用 / 恢复使用 after step-up. Each view calls the service that
``idp orgs list | show | suspend | reactivate`` calls too (``idp.orgs.directory``,
``idp.orgs.suspension``), so the console and the command line decide alike."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from idp import db, web
from idp.admin.audit import mask_text
from idp.admin.forms import OrgSearchForm, SuspensionForm
from idp.admin.views import actor, bp, requires_step_up
from idp.audit import wording
from idp.errors import IdpError
from idp.identity.models import OrgType
from idp.orgs import directory, suspension

PER_PAGE = 20
ORG = "/orgs/<uscc>"


@bp.get("/orgs")
def orgs_list() -> tuple[str, int]:
    form = OrgSearchForm(request.args)
    page_number = request.args.get("page", 1, type=int) or 0
    if not form.validate():
        return render_template("admin/orgs.html", form=form, page=None, error=""), 400
    query = form.q.data or ""
    try:
        page = directory.search_orgs(db.session(), query=query, page=page_number, per_page=PER_PAGE)
    except IdpError as refusal:
        error, status = web.refuse(refusal, form)
        return render_template("admin/orgs.html", form=form, page=None, error=error), status
    return render_template(
        "admin/orgs.html",
        form=form,
        page=page,
        query=query,
        error="",
        type_label=type_label,
        page_url=lambda number: url_for("admin.orgs_list", **{**request.args, "page": number}),
    ), 200


def type_label(org_type: str) -> str:
    return OrgType(org_type).label


@bp.get(ORG)
def org_show(uscc: str) -> str:
    detail = directory.org_detail(db.session(), uscc)  # OrgNotFoundError: the 404 page
    return render_template(
        "admin/org.html",
        detail=detail,
        org=detail.org,
        type_label=type_label,
        describe=wording.action_words,
        target_words=wording.target_words,
        result_words=wording.result_words,
        mask_text=mask_text,
    )


@bp.route(ORG + "/suspend", methods=["GET", "POST"])
@requires_step_up
def org_suspend(uscc: str) -> Any:
    return _change_state(uscc, action="suspend")


@bp.route(ORG + "/reactivate", methods=["GET", "POST"])
@requires_step_up
def org_reactivate(uscc: str) -> Any:
    return _change_state(uscc, action="reactivate")


def _change_state(uscc: str, *, action: str) -> Any:
    """The confirmation page (GET) and the change (POST) of 暂停使用 or 恢复使用."""
    org = suspension.get_org(db.session(), uscc)
    form = SuspensionForm()
    error, status = "", 200
    if form.validate_on_submit():
        change = suspension.suspend_org if action == "suspend" else suspension.reactivate_org
        try:
            done = change(db.session(), org.uscc, reason=form.reason.data or "", actor=actor())
        except IdpError as refusal:
            error, status = web.refuse(refusal, form)
            db.session().commit()  # the refusal's audit event
        else:
            db.session().commit()
            flash(_flash_words(action, done), "success")
            return redirect(url_for("admin.org_show", uscc=org.uscc))
    elif request.method == "POST":
        status = 400
    return render_template(
        "admin/org_confirm.html", org=org, form=form, action=action, error=error
    ), status


def _flash_words(action: str, done: suspension.SuspensionResult) -> str:
    if action == "suspend":
        return _(
            "已暂停该机构使用：已撤销 %(tokens)d 个令牌，已通知 %(notices)d 个应用会话退出登录。",
            tokens=done.tokens_revoked,
            notices=done.notices_queued,
        )
    return _("已恢复该机构使用。")
