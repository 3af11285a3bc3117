"""The authorization endpoint (OIDC Core §3.1.2): Authlib validates the request, then the small
``check_*`` steps below add what Authlib leaves out (docs/protocol.md P7, P16), in this order:
response mode, scope, max_age, id_token_hint; then the interactions login → password change →
role choice → consent; then the code is issued."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from authlib.oauth2.rfc6749.errors import (
    AccessDeniedError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
)
from authlib.oidc.core.errors import (
    AccountSelectionRequiredError,
    ConsentRequiredError,
    InteractionRequiredError,
    LoginRequiredError,
    RegistrationNotSupportedError,
    RequestNotSupportedError,
    RequestURINotSupportedError,
)
from flask import Response, make_response, redirect, render_template, request, url_for
from joserfc import jwt
from joserfc.errors import JoseError
from werkzeug.wrappers import Response as BaseResponse

from idp import audit, db
from idp.auth import session as login_session
from idp.auth.session import LoginSession
from idp.config import settings
from idp.db import utcnow
from idp.identity.eligibility import Grantee, eligible_identities, load_principal
from idp.identity.models import Identity
from idp.identity.phone import is_phone
from idp.identity.principal import Principal
from idp.oidc import consents, interaction, requested_claims
from idp.oidc.claims import SIGNING_ALGS
from idp.oidc.models import Client
from idp.oidc.requested_claims import Requested, UnmetAuthenticationRequirementsError
from idp.oidc.server import authorization_server
from idp.oidc.subjects import subject_for
from idp.oidc.tokens import OFFLINE_ACCESS
from idp.oidc.users import AuthorizedUser
from idp.signing import published_keys

RESPONSE_MODES = ("query", "form_post")


@dataclass
class Pending:
    """A validated authorization request on its way to a decision."""

    grant: Any
    client: Client
    redirect_uri: str
    state: str | None
    response_mode: str
    prompts: set[str]
    record: interaction.Interaction
    stored: bool  # the record is kept in the store only once a page is handed the request
    claims: Requested | None = None  # the claims parameter (OIDC Core §5.5), once checked

    def fail(self, error: OAuth2Error) -> BaseResponse:
        self.finish()
        return respond(self.redirect_uri, _error_params(error, self.state), self.response_mode)

    def hand_off(self, endpoint: str, **params: Any) -> BaseResponse:
        """Send the browser to an interaction page, which resumes this request when done."""
        if not self.stored:
            interaction.save(self.record)
            self.stored = True
        return redirect(url_for(endpoint, interaction=self.record.id, **params))

    def finish(self) -> None:
        if self.stored:
            interaction.finish(self.record)


def authorize() -> BaseResponse | tuple[str, int]:
    login = login_session.current()
    principal = load_principal(db.session(), login)
    try:
        grant = authorization_server().get_consent_grant(end_user=principal)
    except OAuth2Error as error:
        return _refuse(error)
    pending = _pending(grant, login)
    try:
        max_age = check_request(pending)
        return decide(pending, login, principal, max_age)
    except OAuth2Error as error:
        return pending.fail(error)


def _refuse(error: OAuth2Error) -> BaseResponse | tuple[str, int]:
    """An error before the redirect URI was validated never redirects (RFC 6749 §4.1.2.1)."""
    redirect_uri = getattr(error, "redirect_uri", None)
    if redirect_uri:
        mode = request.values.get("response_mode", "query")
        return respond(
            redirect_uri,
            _error_params(error, error.state),
            mode if mode in RESPONSE_MODES else "query",
        )
    return render_template(
        "oidc/authorize_error.html", error=error.error, description=error.description or ""
    ), 400


def _pending(grant: Any, login: LoginSession | None) -> Pending:
    data = grant.request.payload.data
    client: Client = grant.request.client
    record = interaction.load(request.args.get("interaction", "")[:64])
    stored = record is not None and record.client_id == client.client_id
    if record is not None and stored:
        interaction.claim(record, login, step="authorize")
    else:
        record = interaction.new(client_id=client.client_id, params=dict(data), login=login)
    return Pending(
        grant=grant,
        client=client,
        redirect_uri=grant.request.payload.redirect_uri,
        state=grant.request.payload.state,
        response_mode=data.get("response_mode") or "query",
        prompts=set((data.get("prompt") or "").split()),
        record=record,
        stored=stored,
    )


def check_request(pending: Pending) -> int | None:
    """The request checks Authlib does not make; returns max_age."""
    data = pending.grant.request.payload.data
    check_unsupported_parameters(data)
    check_response_mode(pending.response_mode)
    check_scope(pending.client, data.get("scope") or "")
    check_prompt(pending.prompts)
    pending.claims = requested_claims.parse(data.get("claims"))
    return parse_max_age(data.get("max_age"))


def check_unsupported_parameters(data: dict[str, str]) -> None:
    """Request objects and dynamic registration are not offered (discovery says so); OIDC
    Core §6.1, §6.2, §7.2.1 name the error each gets, sent to the client's redirect URI."""
    if "request" in data:
        raise RequestNotSupportedError()
    if "request_uri" in data:
        raise RequestURINotSupportedError()
    if "registration" in data:
        raise RegistrationNotSupportedError()


def check_response_mode(mode: str) -> None:
    """OAuth 2.0 Form Post Response Mode; fragment is for implicit flows, which we do not run."""
    if mode not in RESPONSE_MODES:
        raise InvalidRequestError("unsupported response_mode")


def check_scope(client: Client, scope: str) -> None:
    """Refuse scopes the client is not registered for instead of dropping them (RFC 6749 §3.3)."""
    requested = set(scope.split())
    if "openid" not in requested:
        raise InvalidScopeError("the openid scope is required")
    if not requested <= set(client.scope.split()):
        raise InvalidScopeError("scope not allowed for this client")


# "create": Initiating User Registration via OpenID Connect 1.0 — the relying party's 机构注册
# asks for the UKey login, which leads an organisation without a registration into the wizard.
PROMPTS = {"none", "login", "consent", "select_account", "create"}


def check_prompt(prompts: set[str]) -> None:
    """OIDC Core §3.1.2.1: ``none`` must stand alone."""
    if "none" in prompts and len(prompts) > 1:
        raise InvalidRequestError("prompt=none cannot be combined with other values")
    if not prompts <= PROMPTS:
        raise InvalidRequestError("unsupported prompt value")


def parse_max_age(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 9:
        raise InvalidRequestError("max_age must be a non-negative integer")
    return int(value)


def hinted_subject(pending: Pending) -> str | None:
    """OIDC Core §3.1.2.1 id_token_hint: an ID token we issued (expired is fine) naming the
    user the client expects."""
    hint = pending.grant.request.payload.data.get("id_token_hint")
    if not hint:
        return None
    try:
        token = jwt.decode(hint, published_keys(), algorithms=SIGNING_ALGS)
    except (JoseError, ValueError):
        raise InvalidRequestError(
            "id_token_hint is not a valid ID token of this provider"
        ) from None
    claims = token.claims
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else list(audience or [])
    if claims.get("iss") != settings().issuer or pending.client.client_id not in audiences:
        raise InvalidRequestError("id_token_hint was not issued to this client")
    return str(claims.get("sub"))


def decide(
    pending: Pending, login: LoginSession | None, principal: Principal | None, max_age: int | None
) -> BaseResponse:
    record = pending.record
    if record.denied:
        raise AccessDeniedError()
    if needs_login(pending, login, principal, max_age) or needs_other_acr(pending, login):
        if "none" in pending.prompts:
            raise LoginRequiredError()
        method = "cert" if "create" in pending.prompts or wants_ukey(pending) else None
        return pending.hand_off("auth.login", phone=_login_hint_phone(pending), method=method)
    assert login is not None and principal is not None  # noqa: S101  (needs_login checked both)
    if principal.must_change_password:
        if "none" in pending.prompts:
            raise InteractionRequiredError()
        return pending.hand_off("auth.change_password")
    identity = choose_identity(pending, login, principal)
    if identity is None:
        return pending.hand_off("oidc.choose_role")
    if needs_consent(pending, principal):
        if "none" in pending.prompts:
            raise ConsentRequiredError()
        return pending.hand_off("oidc.consent")
    return issue_code(pending, login, principal, identity)


def needs_login(
    pending: Pending, login: LoginSession | None, principal: Principal | None, max_age: int | None
) -> bool:
    if login is None or principal is None:
        return True
    subject = subject_for(pending.client, principal.subject)
    hinted = hinted_subject(pending)
    if hinted is not None and hinted != subject:
        return True
    # OIDC Core §5.5.1: sub asked with a value is answered only by that person's session.
    asked = requested_claims.requested_subject(pending.claims)
    if asked is not None and asked != subject:
        return True
    fresh_login = {"login", "create"} & pending.prompts
    if fresh_login and login.auth_time < pending.record.created_at:
        return True
    return max_age is not None and utcnow().timestamp() - login.auth_time > max_age


def needs_other_acr(pending: Pending, login: LoginSession | None) -> bool:
    """OIDC Core §5.5.1.1: an essential ``acr`` the session does not have asks for the login
    that gives it (step-up) when the session predates this request; a login made for this
    request that still does not meet it, or values no login here can give, fail the request
    (``unmet_authentication_requirements``)."""
    wanted = requested_claims.essential_acr(pending.claims)
    if wanted is None or login is None or login.acr in wanted:
        return False
    if not set(wanted) & set(requested_claims.ACR_VALUES):
        raise UnmetAuthenticationRequirementsError("no login of this provider gives that acr")
    if login.auth_time >= pending.record.created_at:
        raise UnmetAuthenticationRequirementsError("the login does not meet the requested acr")
    return True


def wants_ukey(pending: Pending) -> bool:
    """The login page opens on the UKey login when only that login meets the essential acr."""
    wanted = requested_claims.essential_acr(pending.claims) or []
    return requested_claims.UKEY_ACR in wanted and requested_claims.OPERATOR_ACR not in wanted


def _login_hint_phone(pending: Pending) -> str | None:
    """``login_hint`` prefills the phone field when it is a phone number (OIDC Core §3.1.2.1)."""
    hint = pending.grant.request.payload.data.get("login_hint") or ""
    return hint if is_phone(hint) else None


def choose_identity(pending: Pending, login: LoginSession, principal: Principal) -> Identity | None:
    """The identity to enter as; None sends the user to the role choice page (角色选择)."""
    eligible = eligible_identities(db.session(), principal, client=pending.client)
    if not eligible:
        raise AccessDeniedError("no identity of this account may use this client")
    chosen = pending.record.identity
    for identity in eligible:
        if identity == chosen:
            return identity
    if len(eligible) == 1 and "select_account" not in pending.prompts:
        return eligible[0]
    if "none" in pending.prompts:
        raise AccountSelectionRequiredError()
    return None


def needs_consent(pending: Pending, principal: Principal) -> bool:
    """Whether the consent page is shown (docs/protocol.md, "Consent"): once per request at
    most; always for ``prompt=consent`` and for ``offline_access``; otherwise only for a client
    registered with ``require_consent`` whose scopes the person has not all consented to."""
    if pending.record.consented:
        return False
    if "consent" in pending.prompts:
        return True
    scope = consent_scope(pending.client, pending.grant.request.payload.data)
    # OIDC Core §11: tokens that outlive the login are granted only with the person's consent,
    # also by a client that otherwise needs none, and it is asked for every time: a remembered
    # consent does not stand in for it.
    if OFFLINE_ACCESS in scope.split():
        return True
    if not pending.client.client_metadata.get("require_consent"):
        return False
    return not consents.covers(
        db.session(), consents.Holder.of(principal), pending.client.client_id, scope
    )


def consent_scope(client: Client, params: dict[str, str]) -> str:
    """The scopes the person agrees to: those requested, and the registered ones whose claims
    the ``claims`` parameter asks for one by one (checked before any page shows it)."""
    scopes = (params.get("scope") or "").split()
    try:
        implied = requested_claims.implied_scopes(requested_claims.parse(params.get("claims")))
    except OAuth2Error:
        implied = set()
    implied &= set(client.scope.split())
    return " ".join(scopes + sorted(implied - set(scopes)))


def issue_code(
    pending: Pending, login: LoginSession, principal: Principal, identity: Identity
) -> BaseResponse:
    user = AuthorizedUser.of(
        Grantee.of(principal),
        identity,
        client=pending.client,
        sid=login.sid,
        auth_time=login.auth_time,
        amr=tuple(login.amr),
        acr=login.acr,
        credential_version=login.credential_version,
    )
    response = authorization_server().create_authorization_response(
        grant=pending.grant, grant_user=user
    )
    pending.finish()
    params = dict(parse_qsl(urlsplit(response.location).query))
    if "code" not in params:
        return respond(
            pending.redirect_uri,
            {k: v for k, v in params.items() if k != "iss"},
            pending.response_mode,
        )
    audit.record(
        "oidc.code_issued",
        actor=principal.actor,
        target=f"client:{pending.client.client_id}",
        org_id=identity.org_id,
        details={"role": identity.role, "org_type": identity.org_type},
    )
    return respond(
        pending.redirect_uri,
        {"code": params["code"], "state": pending.state},
        pending.response_mode,
    )


def _error_params(error: OAuth2Error, state: str | None) -> dict[str, str | None]:
    return {"error": error.error, "error_description": error.description or None, "state": state}


def respond(redirect_uri: str, params: dict[str, str | None], response_mode: str) -> BaseResponse:
    """Send the authorization response with RFC 9207 ``iss``, by query or form post."""
    values = {k: v for k, v in params.items() if v is not None}
    values["iss"] = settings().issuer
    if response_mode == "form_post":
        response: Response = make_response(
            render_template("oidc/form_post.html", redirect_uri=redirect_uri, params=values)
        )
        response.headers["X-Form-Action"] = interaction.origin_of(redirect_uri)
        return response
    separator = "&" if urlsplit(redirect_uri).query else "?"
    return redirect(redirect_uri + separator + urlencode(values), code=302)
