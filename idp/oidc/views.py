"""Protocol endpoints (thin: parse → Authlib/service → respond) and the interaction pages."""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749.errors import InsecureTransportError, OAuth2Error
from authlib.oauth2.rfc6750 import InvalidTokenError
from flask import (
    Blueprint,
    Response,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response as BaseResponse

from idp import audit, context, db, web
from idp import request_params as params
from idp.auth import session as login_session
from idp.auth.client import network_key
from idp.config import settings
from idp.errors import IdpError, NotFoundError
from idp.extensions import csrf
from idp.identity.eligibility import eligible_identities, load_principal
from idp.identity.principal import Principal
from idp.oidc import authorize as authorization
from idp.oidc import consents, discovery, interaction, registration
from idp.oidc.claims import identity_claims
from idp.oidc.clients import find_enabled_client
from idp.oidc.frontchannel import logout_frames
from idp.oidc.models import Client
from idp.oidc.server import authorization_server, origin, resource_protector
from idp.oidc.subjects import subject_for
from idp.oidc.users import user_for
from idp.security import client_ip
from idp.signing import key_store

bp = Blueprint("oidc", __name__, template_folder="templates")


# --- discovery --------------------------------------------------------------------------------


@bp.get("/.well-known/openid-configuration")
def openid_configuration() -> Response:
    document = discovery.metadata_document()
    return discovery.json_response(document, max_age=discovery.METADATA_MAX_AGE)


@bp.get("/.well-known/jwks.json")
def jwks() -> Response:
    document = discovery.jwks_document(key_store().public_jwks())
    # A new key waits this long before it signs (IDP_JWKS_MAX_AGE), so no RP holds a stale copy.
    return discovery.json_response(document, max_age=settings().jwks_max_age)


# --- authorization and its interactions ------------------------------------------------------


@bp.route("/authorize", methods=["GET", "POST"])
@csrf.exempt  # the request comes from the relying party; its integrity is the client's state
def authorize() -> BaseResponse | tuple[str, int]:
    try:
        params.check_request_parameters()
    except params.MalformedParameterError as error:
        # Nothing is known to be a registered redirect URI yet: answer here (RFC 6749 §4.1.2.1).
        return _malformed_page(str(error))
    return authorization.authorize()


def _malformed_page(description: str) -> tuple[str, int]:
    return render_template(
        "oidc/authorize_error.html", error="invalid_request", description=description
    ), 400


@bp.get("/authorize/resume")
def resume() -> BaseResponse:
    """Continue a pending request known by its id: a link that knows no more (the
    registration wizard's last page), or a hand-back whose record is gone or another
    browser's (``interaction.resume_url``). The owner is checked, then /authorize."""
    record = _interaction()
    interaction.claim(record, login_session.current(), step="resume")
    return redirect(interaction.authorize_url(record))


@bp.route("/authorize/choose", methods=["GET", "POST"])
def choose_role() -> BaseResponse | str:
    """角色选择: the account holds several identities eligible for this relying party."""
    record = _interaction()
    login, principal = _logged_in()
    interaction.check_owner(record, login, step="choose_role")
    client = _client(record.client_id)
    identities = eligible_identities(db.session(), principal, client=client)
    form = FlaskForm()
    if request.method == "POST" and form.validate_on_submit():
        if "cancel" in request.form:
            record.denied = True
        else:
            chosen = [i for i in identities if i.key == request.form.get("identity")]
            if not chosen:
                raise IdpError(_("请选择一个身份"))
            record.identity = chosen[0]
        interaction.save(record)
        return redirect(interaction.authorize_url(record))
    return render_template(
        "oidc/choose_role.html", client=client, identities=identities, form=form, record=record
    )


@bp.route("/authorize/consent", methods=["GET", "POST"])
def consent() -> BaseResponse | str:
    record = _interaction()
    login, principal = _logged_in()
    interaction.check_owner(record, login, step="consent")
    client = _client(record.client_id)
    form = FlaskForm()
    scope = authorization.consent_scope(client, dict(_query_items(record.query)))
    if request.method == "POST" and form.validate_on_submit():
        record.denied = "deny" in request.form
        record.consented = not record.denied
        # The store first: the SQL store may share the database, whose write lock the
        # remembered consent holds until the request commits.
        interaction.save(record)
        if record.consented:
            consents.remember(db.session(), consents.Holder.of(principal), client.client_id, scope)
        audit.record(
            "oidc.consent",
            actor=principal.actor,
            target=f"client:{client.client_id}",
            result="denied" if record.denied else "granted",
        )
        return redirect(interaction.authorize_url(record))
    return render_template(
        "oidc/consent.html",
        client=client,
        scopes=[consents.scope_words(name) for name in scope.split()],
        form=form,
        record=record,
    )


def _interaction() -> interaction.Interaction:
    record = interaction.load(request.values.get("interaction", "")[:64])
    if record is None:
        raise NotFoundError(_("登录请求已过期，请回到原系统重新登录"))
    return record


def _logged_in() -> tuple[login_session.LoginSession, Principal]:
    login = login_session.current()
    principal = load_principal(db.session(), login)
    if login is None or principal is None:
        raise IdpError(_("请先登录"))
    return login, principal


def _client(client_id: str) -> Client:
    client = find_enabled_client(db.session(), client_id)
    if client is None:
        raise NotFoundError()
    return client


def _query_items(query: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(query)


# --- token, userinfo, revocation, introspection, logout ------------------------------------


def _invalid_request(description: str) -> tuple[Response, int]:
    response = jsonify(error="invalid_request", error_description=description)
    response.headers["Cache-Control"] = "no-store"
    return response, 400


def _client_request_problem() -> str:
    """Why a client's request to the token, revocation or introspection endpoint is malformed
    before any client is looked up: a malformed or repeated parameter (RFC 6749 §3.2), or more
    than one client authentication method (RFC 6749 §2.3); "" when it is not."""
    try:
        params.check_request_parameters()
        params.check_basic_credentials()
    except params.MalformedParameterError as error:
        return str(error)
    if len(params.client_auth_methods()) > 1:
        return "more than one client authentication method"
    return ""


# Grants whose writes are each one statement meant to stand by itself (on PostgreSQL): the
# claim of a code (with its audit event) or of a refresh token, committed at once whatever
# follows (grants), and the token with its anchor (tokens.issue).
STANDALONE_GRANTS = frozenset({"authorization_code", "refresh_token", "client_credentials"})


@bp.post("/oauth/token")
@csrf.exempt
def token() -> Response | tuple[Response, int]:
    if problem := _client_request_problem():
        return _invalid_request(problem)
    if context.request().form.get("grant_type") in STANDALONE_GRANTS:
        db.statements_stand_alone()
    response: Response = authorization_server().create_token_response()
    return response


@bp.post("/oauth/revoke")
@csrf.exempt
def revoke() -> Response | tuple[Response, int]:
    if problem := _client_request_problem():
        return _invalid_request(problem)
    response: Response = authorization_server().create_endpoint_response("revocation")
    return response


@bp.post("/oauth/introspect")
@csrf.exempt
def introspect() -> Response | tuple[Response, int]:
    if problem := _client_request_problem():
        return _invalid_request(problem)
    db.statements_stand_alone()  # reads only
    response: Response = authorization_server().create_endpoint_response("introspection")
    return response


@bp.route("/oauth/userinfo", methods=["GET", "POST"])
@csrf.exempt
def userinfo() -> Response | tuple[Response, int] | tuple[Response, int, dict[str, str]]:
    """OIDC Core §5.3, bearer token in the header or (POST) in the form (RFC 6750 §2.2), in
    one of them only (RFC 6750 §2), over HTTPS as the token was issued (RFC 6750 §5.3)."""
    db.statements_stand_alone()  # reads only
    try:
        params.check_request_parameters()
    except params.MalformedParameterError as error:
        return _invalid_request(str(error))
    if len(params.bearer_token_places()) > 1:
        return _invalid_request("the access token is sent in more than one place")
    try:
        token = _bearer_token()
    except InsecureTransportError:
        raise  # web.handle_insecure_transport answers it, as at every protocol endpoint
    except OAuth2Error as error:
        status, body, headers = error()
        return jsonify(body), status, dict(headers)
    user = user_for(db.session(), token)
    if user is None:
        status, body, headers = InvalidTokenError()()
        return jsonify(body), status, dict(headers)
    return jsonify(
        identity_claims(user, token.scope, client=token.enabled_client, requested=token.claims)
    )


@bp.post("/oauth/register")
@csrf.exempt
def register() -> Response:
    """RFC 7591 dynamic client registration, behind an initial access token."""
    return _registration_answer("client_registration")


@bp.route("/oauth/register/<client_id>", methods=["GET", "PUT", "DELETE"])
@csrf.exempt
def client_configuration(client_id: str) -> Response:
    """RFC 7592 client configuration, with the client's registration access token."""
    return _registration_answer("client_configuration")


def _registration_answer(endpoint: str) -> Response:
    registration.limit_body()
    registration.count_request(network_key(client_ip()))
    response: Response = authorization_server().create_endpoint_response(endpoint)
    if response.status_code >= 400:
        web.rollback()  # a spent use or a half-made client goes; the refusal's audit stays
    return response


def _bearer_token() -> Any:
    protector = resource_protector()
    flask_request = context.request()
    if (
        "Authorization" not in flask_request.headers
        and flask_request.method == "POST"
        and flask_request.form.get("access_token")
    ):
        InsecureTransportError.check(origin(flask_request))  # as the protector's own requests do
        validator = protector.get_token_validator("bearer")
        found = validator.authenticate_token(flask_request.form["access_token"])
        validator.validate_token(found, ["openid"], flask_request)
        return found
    return protector.acquire_token(["openid"])


@bp.route("/oauth/logout", methods=["GET", "POST"])
@csrf.exempt  # relying parties may POST here; the confirmation form checks its own CSRF token
def end_session() -> BaseResponse | tuple[str, int] | str:
    """OpenID Connect RP-Initiated Logout 1.0. The browser's session ends without a question
    only when the ID token hint names it (``sub`` and ``sid``); otherwise the person confirms
    on a page of ours (§6: a logout request is a means of denial of service), docs/protocol.md P18."""
    try:
        params.check_request_parameters()
    except params.MalformedParameterError as error:
        return _malformed_page(str(error))
    server = authorization_server()
    try:
        validated = server.validate_endpoint_request("end_session")
    except OAuth2Error as error:
        return render_template(
            "oidc/authorize_error.html", error=error.error, description=error.description or ""
        ), 400
    login = login_session.current()
    answer = _logout_answer()
    if answer == "invalid":
        return render_template(
            "oidc/authorize_error.html",
            error="invalid_request",
            description=_("页面已过期，请刷新后重试"),
        ), 400
    if answer == "decline":
        audit.record("auth.logout_confirmation_declined", actor=_login_actor(login))
        return redirect(url_for("portal.index"))
    if answer != "confirm" and login is not None and not _hint_names_session(validated, login):
        return _logout_confirmation(validated)
    response = server.create_endpoint_response("end_session", validated)
    if response is not None and logout_frames():
        # Front-Channel Logout 1.0 §4: the relying parties' iframes first, then the redirect.
        return render_template("auth/logged_out.html", continue_to=response.headers["Location"])
    if response is not None:
        if validated.redirect_uri:
            response.headers["X-Form-Action"] = interaction.origin_of(validated.redirect_uri)
        return response
    return render_template("auth/logged_out.html")


def _logout_answer() -> str:
    """The person's answer on the confirmation page: "confirm", "decline", "" (none given) or
    "invalid" (without the page's CSRF token an answer does not count)."""
    if request.method != "POST" or not ({"confirm", "decline"} & set(request.form)):
        return ""
    if not FlaskForm().validate_on_submit():
        return "invalid"
    return "decline" if "decline" in request.form else "confirm"


def _hint_names_session(validated: Any, login: login_session.LoginSession) -> bool:
    claims = validated.id_token_claims
    principal = load_principal(db.session(), login)
    return (
        claims is not None
        and principal is not None
        and claims.get("sub") == subject_for(validated.client, principal.subject)  # pairwise too
        and claims.get("sid") == login.sid
    )


def _logout_confirmation(validated: Any) -> Response:
    """The confirmation page re-posts the request's own parameters (validated again). Its
    form ends in a redirect to the relying party, so that origin joins its ``form-action``."""
    carried = ("id_token_hint", "client_id", "post_logout_redirect_uri", "state", "ui_locales")
    params = {name: request.values[name] for name in carried if request.values.get(name)}
    response = make_response(
        render_template(
            "oidc/end_session_confirm.html",
            params=params,
            client=validated.client,
            form=FlaskForm(),
        )
    )
    if validated.redirect_uri:
        response.headers["X-Form-Action"] = interaction.origin_of(validated.redirect_uri)
    return response


def _login_actor(login: login_session.LoginSession | None) -> str:
    if login is None:
        return "anonymous"
    return f"account:{login.account_id}" if login.account_id is not None else f"org:{login.org_id}"
