"""Relying parties in the platform console: list and search, register, edit, disable and
enable, rotate the secret and remove (the last two after step-up). Each view parses the form
and calls the service ``idp clients`` uses too (``idp.oidc.clients``), so the console and the
command line validate alike (RFC 7591)."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response as BaseResponse

from idp import db, forms, web
from idp.admin.forms import ClientForm, SearchForm
from idp.admin.views import actor, bp, requires_step_up
from idp.errors import IdpError
from idp.oidc import clients
from idp.oidc.grants import SECRET_AUTH_METHODS
from idp.oidc.models import Client

CLIENT = "/clients/<client_id>"


@bp.get("/clients")
def clients_list() -> str:
    form = SearchForm(request.args)
    form.validate()
    text = form.q.data or ""
    found = (
        clients.search_clients(db.session(), text) if text else clients.list_clients(db.session())
    )
    return render_template("admin/clients.html", form=form, clients=found, query=text)


@bp.route("/clients/new", methods=["GET", "POST"])
def client_new() -> Any:
    form = ClientForm()
    error, status = "", 200
    if forms.showing():
        form.fill_from(clients.DEFAULTS)
    elif form.validate_on_submit():
        try:
            client, secret = clients.register_client(db.session(), form.metadata(), actor=actor())
        except IdpError as refusal:
            error, status = web.refuse(refusal, form)
            db.session().commit()
        else:
            db.session().commit()
            return render_template("admin/client_secret.html", client=client, secret=secret)
    else:
        status = 400
    return render_template("admin/client_form.html", form=form, error=error, client=None), status


def _client_or_404(client_id: str) -> Client:
    return clients.get_client(db.session(), client_id)  # NotFoundError: the 404 page


@bp.route(CLIENT, methods=["GET", "POST"])
def client_edit(client_id: str) -> Any:
    client = _client_or_404(client_id)
    form = ClientForm()
    error, status = "", 200
    if forms.showing():
        form.fill_from(client.client_metadata)
    elif form.validate_on_submit():
        try:
            clients.update_client(db.session(), client_id, form.changes(), actor=actor())
        except IdpError as refusal:
            error, status = web.refuse(refusal, form)
            db.session().commit()
        else:
            db.session().commit()
            flash(_("已保存"), "success")
            return redirect(url_for("admin.client_edit", client_id=client_id))
    else:
        status = 400
    return render_template(
        "admin/client_form.html",
        form=form,
        error=error,
        client=client,
        has_secret=client.auth_method in SECRET_AUTH_METHODS,
        toggle=FlaskForm(),
    ), status


@bp.post(CLIENT + "/disable")
def client_disable(client_id: str) -> BaseResponse:
    _client_or_404(client_id)
    clients.set_client_disabled(db.session(), client_id, True, actor=actor())
    db.session().commit()
    flash(_("已停用，该应用的令牌已全部失效"), "success")
    return redirect(url_for("admin.client_edit", client_id=client_id))


@bp.post(CLIENT + "/enable")
def client_enable(client_id: str) -> BaseResponse:
    _client_or_404(client_id)
    clients.set_client_disabled(db.session(), client_id, False, actor=actor())
    db.session().commit()
    flash(_("已启用"), "success")
    return redirect(url_for("admin.client_edit", client_id=client_id))


@bp.route(CLIENT + "/rotate-secret", methods=["GET", "POST"])
@requires_step_up
def client_rotate_secret(client_id: str) -> Any:
    client = _client_or_404(client_id)
    if forms.showing():
        return render_template(
            "admin/client_confirm.html", client=client, action="rotate", form=FlaskForm()
        )
    try:
        client, secret = clients.rotate_secret(db.session(), client_id, actor=actor())
    except IdpError as refusal:
        error, status = web.refuse(refusal)
        db.session().commit()
        return render_template(
            "admin/client_confirm.html",
            client=client,
            action="rotate",
            form=FlaskForm(),
            error=error,
        ), status
    db.session().commit()
    return render_template("admin/client_secret.html", client=client, secret=secret)


@bp.route(CLIENT + "/remove", methods=["GET", "POST"])
@requires_step_up
def client_remove(client_id: str) -> Any:
    client = _client_or_404(client_id)
    if forms.showing():
        return render_template(
            "admin/client_confirm.html", client=client, action="remove", form=FlaskForm()
        )
    clients.remove_client(db.session(), client_id, actor=actor())
    db.session().commit()
    flash(_("已删除应用 %(name)s", name=client.name), "success")
    return redirect(url_for("admin.clients_list"))
