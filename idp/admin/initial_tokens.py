"""Initial access tokens in the platform console (初始访问令牌): the permission to register
relying parties at ``/oauth/register`` (RFC 7591 §3). Issue and revoke come after step-up,
like the other actions that change who may act; the token is shown once, only its digest is
kept. The views call the service ``idp clients initial-token`` uses (``idp.oidc.registration``)."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm

from idp import db, forms, web
from idp.admin.forms import InitialTokenForm
from idp.admin.views import actor, bp, requires_step_up
from idp.errors import IdpError
from idp.oidc import registration

TOKENS = "/initial-access-tokens"


@bp.get(TOKENS)
def initial_tokens() -> str:
    tokens = registration.list_initial_tokens(db.session())
    return render_template("admin/initial_tokens.html", tokens=tokens)


@bp.route(TOKENS + "/new", methods=["GET", "POST"])
@requires_step_up
def initial_token_new() -> Any:
    form = InitialTokenForm()
    error, status = "", 200
    if request.method == "POST" and form.validate_on_submit():
        try:
            token, value = registration.issue_initial_token(
                db.session(),
                label=form.label.data or "",
                days=form.days.data or 0,
                max_uses=form.max_uses.data,
                actor=actor(),
            )
        except IdpError as refusal:
            error, status = web.refuse(refusal, form)
            db.session().commit()
        else:
            db.session().commit()
            return render_template("admin/initial_token_value.html", token=token, value=value)
    elif request.method == "POST":
        status = 400
    return render_template("admin/initial_token_form.html", form=form, error=error), status


@bp.route(TOKENS + "/<int:token_id>/revoke", methods=["GET", "POST"])
@requires_step_up
def initial_token_revoke(token_id: int) -> Any:
    token = registration.get_initial_token(db.session(), token_id)  # NotFoundError: 404 page
    if forms.showing():
        return render_template("admin/initial_token_revoke.html", token=token, form=FlaskForm())
    registration.revoke_initial_token(db.session(), token_id, actor=actor())
    db.session().commit()
    flash(_("已撤销初始访问令牌“%(label)s”。", label=token.label), "success")
    return redirect(url_for("admin.initial_tokens"))
