"""The registration wizard of journey 1 (docs/design.md, manual §1.1) for an org admin after certificate login:
选择注册类型 → "已有…身份账号?" → 是: bind the legacy account / 否: register.

Deny by default: every route needs an org admin login session carrying a verified certificate
(``require_org_admin``); the organisation is always the certificate's.
"""

from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response as BaseResponse

from idp import db, forms, web
from idp.auth import continuation
from idp.auth import session as login_session
from idp.errors import IdpError
from idp.identity.lookup import find_org
from idp.identity.models import Organisation, OrgType
from idp.oidc import interaction
from idp.oidc.clients import find_client
from idp.oidc.models import Client
from idp.orgs import legacy, registration
from idp.orgs.forms import BindForm, ChooseTypeForm, RegistrationForm
from idp.orgs.registration import Applicant, OrgDetails

bp = Blueprint("orgs", __name__, template_folder="templates")


class OrgAdminRequiredError(IdpError):
    code = "org_admin_required"
    status = 403
    message = _l("机构注册需使用企业 UKey 登录")


@bp.before_request
def require_org_admin() -> BaseResponse | None:
    login = login_session.current()
    if login is None or (login.kind == "org_admin" and not login.certificate):
        return redirect(url_for("auth.login", method="cert"))
    applicant = Applicant.of(login)
    if applicant is None:
        raise OrgAdminRequiredError()
    g.orgs_applicant = applicant
    return None


def current_applicant() -> Applicant:
    value: Applicant = g.orgs_applicant
    return value


def offered_type(org_type: str) -> OrgType:
    return registration.check_registrable(
        db.session(), uscc=current_applicant().uscc, org_type=org_type
    )


def client_choices(clients: list[Client]) -> list[tuple[str, str]]:
    return [(c.client_id, c.name) for c in clients]


def finish(org: Organisation, *, title: str, org_type: OrgType, clients: list[Client]) -> str:
    """Commit, then point the login session at the organisation.

    Committed first: on SQLite the pending writes hold the database lock that the SQL store's
    own connection (where the login session lives) would wait on."""
    db.session().commit()
    login = login_session.current()
    if login is not None:
        login.org_id = org.id
        # Registered: the session now acts for the organisation, under a new id.
        if login_session.save(login):
            login_session.renew(login)
    return render_template(
        "orgs/done.html",
        title=title,
        org=org,
        org_type=org_type,
        clients=clients,
        continue_to=pending_relying_party(),
    )


def pending_relying_party() -> tuple[str, Client] | None:
    """The relying party whose login started this registration, with the request to resume:
    the wizard ends back there (continuing its authorization), not at the portal."""
    record = interaction.load(continuation.registration_done())
    client = find_client(db.session(), record.client_id) if record is not None else None
    if record is None or client is None:
        return None
    return record.id, client


@bp.route("/register", methods=["GET", "POST"])
def register() -> tuple[str, int] | BaseResponse:
    """选择注册类型: one choice per org type the organisation may still register."""
    types = registration.registrable_types(db.session(), uscc=current_applicant().uscc)
    form = ChooseTypeForm()
    form.org_type.choices = [(t.value, _("%(type)s注册", type=t.label)) for t in types]
    if form.validate_on_submit():
        return redirect(url_for("orgs.prompt", org_type=form.org_type.data))
    org = find_org(db.session(), current_applicant().uscc)
    return render_template(
        "orgs/choose_type.html", form=form, registered=bool(registration.held_types(org))
    ), (400 if request.method == "POST" else 200)


@bp.get("/register/<org_type>")
def prompt(org_type: str) -> str:
    """您所在企业是否在维修资金系统已有…身份账号？是 / 否."""
    return render_template("orgs/prompt.html", org_type=offered_type(org_type))


@bp.route("/register/<org_type>/bind", methods=["GET", "POST"])
def bind(org_type: str) -> tuple[str, int]:
    """是: bind the legacy account of the chosen relying party."""
    chosen = offered_type(org_type)
    clients = registration.platforms(db.session(), chosen)
    form = BindForm()
    form.client_id.choices = client_choices(clients)
    if forms.showing() and len(clients) == 1:
        form.client_id.data = clients[0].client_id
    error, status = "", 200
    if form.validate_on_submit():
        bind_request = legacy.BindRequest(
            org_type=chosen,
            client_id=form.client_id.data,
            account_ref=form.legacy_account.data,
            otp_code=form.otp_code.data or "",
            legacy_key=form.legacy_key.data or "",
        )
        try:
            org = legacy.bind(db.session(), applicant=current_applicant(), request=bind_request)
        except IdpError as failure:
            error, status = web.refuse(failure)
        else:
            bound_to = [c for c in clients if c.client_id == bind_request.client_id]
            return finish(org, title=_("绑定成功"), org_type=chosen, clients=bound_to), 200
    elif request.method == "POST":
        status = 400
    return render_template("orgs/bind.html", form=form, org_type=chosen, error=error), status


@bp.route("/register/<org_type>/new", methods=["GET", "POST"])
def register_new(org_type: str) -> tuple[str, int]:
    """否: a new registration for the chosen platforms."""
    chosen = offered_type(org_type)
    clients = registration.platforms(db.session(), chosen)
    form = RegistrationForm()
    form.platforms.choices = client_choices(clients)
    if forms.showing():
        prefill(form, clients)
    form.uscc.data = current_applicant().uscc  # read-only: never what was posted
    error, status = "", 200
    if form.validate_on_submit():
        try:
            org = registration.register(
                db.session(),
                applicant=current_applicant(),
                org_type=chosen,
                details=OrgDetails(
                    name=form.name.data,
                    contact_person=form.contact_person.data,
                    contact_phone=form.contact_phone.data,
                    address=form.address.data,
                ),
                client_ids=list(form.platforms.data),
            )
        except IdpError as failure:
            error, status = web.refuse(failure)
        else:
            chosen_clients = [c for c in clients if c.client_id in form.platforms.data]
            return finish(org, title=_("注册成功"), org_type=chosen, clients=chosen_clients), 200
    elif request.method == "POST":
        status = 400
    return render_template("orgs/register.html", form=form, org_type=chosen, error=error), status


def prefill(form: RegistrationForm, clients: list[Client]) -> None:
    """The organisation's current details, or the certificate's name for a new one."""
    org = find_org(db.session(), current_applicant().uscc)
    form.name.data = org.name if org else current_applicant().org_name
    if org is not None:
        form.contact_person.data = org.contact_person
        form.contact_phone.data = org.contact_phone
        form.address.data = org.address
    if len(clients) == 1:
        form.platforms.data = [clients[0].client_id]
