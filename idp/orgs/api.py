"""The management API (docs/design.md journey 3): the org admin console's 操作员管理 and 用户审核 as
JSON under ``/api/v1/org/``, for relying parties that show them in their own 系统管理 menu.

Deny by default: every ``/api/v1/org/`` route needs a bearer access token the provider issued
to a relying party for an org admin (identity role ``org_admin``, still accepted by
``user_for``) carrying the route's scope (``org.operators`` or ``org.reviews``). The token's
organisation is the only one the route acts on; another organisation's ids are unknown (404).

Views parse and check the JSON shape the OpenAPI document (``idp.orgs.openapi``) declares,
then call the same service function as the console page (``idp.orgs.operators``,
``idp.orgs.reviews``), which checks the content, writes the audit events and raises the
page's errors. Errors are RFC 9457 problem details with the ``IdpError`` code.
"""

from __future__ import annotations

import json
import logging
import unicodedata
from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime
from typing import Any

from authlib.oauth2 import OAuth2Error
from flask import Blueprint, Response, current_app, g, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from idp import db
from idp.errors import IdpError
from idp.extensions import csrf
from idp.identity.models import ID_MAX, JoinRequestStatus, Organisation, Role
from idp.identity.principal import of_org_admin
from idp.oidc.server import resource_protector
from idp.oidc.users import user_for
from idp.orgs import openapi, operators, reviews
from idp.orgs.api_contract import (
    ADD_FIELDS,
    MAX_BODY,
    OPERATOR_STATUSES,
    PATCH_FIELDS,
    PER_PAGE,
    PREFIX,
    QUERY_PARAMS,
    REJECT_FIELDS,
    REVIEW_STATUSES,
    ROUTE_SCOPES,
    Text,
)
from idp.pagination import MAX_PAGE, MAX_PER_PAGE, Page

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix=PREFIX)
csrf.exempt(bp)  # bearer tokens, no cookies: nothing for a cross-site form to ride on
PUBLIC_ENDPOINTS = {"api.openapi_document"}

# --- errors -------------------------------------------------------------------------------------


class ApiError(IdpError):
    """A refused API request; ``field`` names the body member or parameter at fault."""

    challenge = ""  # the WWW-Authenticate value of 401 and insufficient-scope answers

    def __init__(self, message: str | None = None, *, field: str = "", challenge: str = "") -> None:
        super().__init__(message, field=field or None)
        self.challenge = challenge or self.challenge


class MissingTokenError(ApiError):
    code = "missing_token"
    status = 401
    message = _l("需要企业管理员的访问令牌")


class InvalidTokenError(ApiError):
    """Expired, revoked or unknown, or its identity may no longer act (RFC 6750 §3.1)."""

    code = "invalid_token"
    status = 401
    message = _l("访问令牌无效或已过期")


class InsecureTransportError(ApiError):
    """A bearer token sent over plain HTTP to a host other than this machine (RFC 6750 §5.3)."""

    code = "insecure_transport"
    message = _l("请通过 HTTPS 访问")


class InsufficientScopeError(ApiError):
    code = "insufficient_scope"
    status = 403
    message = _l("访问令牌没有此功能所需的授权范围")


class NotOrgAdminError(ApiError):
    code = "org_admin_required"
    status = 403
    message = _l("仅企业管理员可以使用此功能")


class MalformedBodyError(ApiError):
    code = "malformed_json"
    message = _l("请求内容须为 JSON 对象")


class UnsupportedMediaTypeError(ApiError):
    code = "unsupported_media_type"
    status = 415
    message = _l("请求内容类型须为 application/json")


class InvalidParameterError(ApiError):
    code = "invalid_parameter"


class UnknownFieldError(ApiError):
    code = "unknown_field"


def challenge(*, scope: str, error: str = "", description: str = "") -> str:
    """A ``WWW-Authenticate`` Bearer challenge (RFC 6750 §3); no error code when the request
    carried no token at all. The texts stay ASCII, as §3 requires."""
    params = [f'error="{error}"'] if error else []
    if description:
        params.append(f'error_description="{description}"')
    params.append(f'scope="{scope}"')
    return "Bearer " + ", ".join(params)


@bp.after_request
def no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


# --- the guard ----------------------------------------------------------------------------------


@bp.before_request
def require_org_admin_token() -> None:
    """Bearer token of an org admin with the route's scope; remembers the org and the actor."""
    request.max_content_length = MAX_BODY
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    scope = required_scope()
    token = bearer_token(scope)
    if token.identity is None:  # a client's own token (client_credentials): nobody's org
        raise NotOrgAdminError()
    org = db.session().get(Organisation, token.identity.org_id)
    if org is None or user_for(db.session(), token) is None:  # may no longer act as it
        raise dead_token(scope, "token no longer valid")
    if token.identity.role != Role.ORG_ADMIN:
        raise NotOrgAdminError()
    validator = resource_protector().get_token_validator("bearer")
    if validator.scope_insufficient(token.get_scope(), [scope]):
        raise InsufficientScopeError(challenge=challenge(scope=scope, error="insufficient_scope"))
    g.api_org = org
    g.api_actor = of_org_admin(org).actor
    check_ids()


def check_ids() -> None:
    """An id no database column can hold is as unknown as any other missing one (the int
    converter takes any digits)."""
    args = request.view_args or {}
    if args.get("membership_id", 0) > ID_MAX:
        raise operators.OperatorNotFoundError()
    if args.get("request_id", 0) > ID_MAX:
        raise reviews.JoinRequestNotFoundError()


def required_scope() -> str:
    rule = request.url_rule.rule if request.url_rule is not None else ""
    for prefix, scope in ROUTE_SCOPES.items():
        if rule == prefix or rule.startswith(prefix + "/"):
            return scope
    raise NotOrgAdminError()


def bearer_token(scope: str) -> Any:
    """The live access token of the ``Authorization: Bearer`` header (RFC 6750 §2.1 only)."""
    try:
        return resource_protector().acquire_token()
    except OAuth2Error as error:
        if error.error == InsecureTransportError.code:
            raise InsecureTransportError() from error
        if error.error == "invalid_token":
            raise dead_token(scope, "token expired, revoked or unknown") from error
        raise MissingTokenError(challenge=challenge(scope=scope)) from error


def dead_token(scope: str, description: str) -> InvalidTokenError:
    return InvalidTokenError(
        challenge=challenge(scope=scope, error="invalid_token", description=description)
    )


def current_org() -> Organisation:
    value: Organisation = g.api_org
    return value


def current_actor() -> str:
    value: str = g.api_actor
    return value


# --- request parsing ----------------------------------------------------------------------------


def json_body() -> dict[str, Any]:
    """The request's JSON object (the body limit is ``MAX_BODY``: 413 beyond it)."""
    if not request.is_json:
        raise UnsupportedMediaTypeError()
    raw = request.get_data(cache=True)
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as error:  # RecursionError: nesting deeper than Python
        raise MalformedBodyError() from error
    if not isinstance(body, dict):
        raise MalformedBodyError()
    return body


def checked_fields(
    body: Mapping[str, Any], allowed: Mapping[str, Text], *, others: bool = False
) -> dict[str, str]:
    """The ``allowed`` members of ``body``, each a string within its limits. Other members are
    refused unless ``others`` (PATCH hands them to the service, which refuses them in turn)."""
    unknown = sorted(set(body) - set(allowed))
    if unknown and not others:
        raise UnknownFieldError(
            _("不支持的字段：%(field)s", field=unknown[0][:40]), field=unknown[0][:40]
        )
    return {
        name: check_text(body[name], field=name, limits=limits)
        for name, limits in allowed.items()
        if name in body
    }


def check_text(value: object, *, field: str, limits: Text) -> str:
    """A string of at most ``limits.max_length`` characters without control characters or lone
    surrogates (neither can be stored or sent by SMS)."""
    if not isinstance(value, str):
        raise InvalidParameterError(_("%(field)s 须为字符串", field=field), field=field)
    if len(value) > limits.max_length:
        raise InvalidParameterError(
            _("%(field)s 不能超过 %(n)d 个字符", field=field, n=limits.max_length), field=field
        )
    allowed = "\t\n\r" if limits.multiline else ""
    if any(unicodedata.category(c) in ("Cc", "Cs") and c not in allowed for c in value):
        raise InvalidParameterError(_("%(field)s 含有无效字符", field=field), field=field)
    return value


def query_text(name: str) -> str | None:
    value = single_arg(name)
    return None if value is None else check_text(value, field=name, limits=QUERY_PARAMS[name])


def query_choice(name: str, choices: list[str]) -> str | None:
    value = single_arg(name)
    if value is not None and value not in choices:
        raise InvalidParameterError(_("%(field)s 取值无效", field=name), field=name)
    return value


def query_int(name: str, *, default: int, maximum: int) -> int:
    value = single_arg(name)
    if value is None:
        return default
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= maximum:
        raise InvalidParameterError(
            _("%(field)s 须为 1 到 %(n)d 之间的整数", field=name, n=maximum), field=name
        )
    return int(value)


def single_arg(name: str) -> str | None:
    values = request.args.getlist(name)
    if len(values) > 1:
        raise InvalidParameterError(_("%(field)s 只能出现一次", field=name), field=name)
    return values[0] if values else None


def page_args() -> tuple[int, int]:
    return (
        query_int("page", default=1, maximum=MAX_PAGE),
        query_int("per_page", default=PER_PAGE, maximum=MAX_PER_PAGE),
    )


# --- answers ------------------------------------------------------------------------------------


def as_json(view: Any, *, omit: tuple[str, ...] = ()) -> dict[str, Any]:
    """A service dataclass as JSON: every field, datetimes in RFC 3339 (UTC)."""
    out = {}
    for item in fields(view):
        if item.name in omit:
            continue
        value = getattr(view, item.name)
        out[item.name] = value.isoformat() if isinstance(value, datetime) else value
    return out


def operator_json(view: operators.OperatorView) -> dict[str, Any]:
    return {**as_json(view), "masked_phone": view.masked_phone}


def operator_summary(view: operators.OperatorView) -> dict[str, Any]:
    """A list row: the phone masked, as the console's list shows it."""
    return {
        **as_json(view, omit=("phone", "updated_at", "deleted_at")),
        "masked_phone": view.masked_phone,
    }


def join_request_json(view: reviews.JoinRequestView) -> dict[str, Any]:
    return {**as_json(view), "masked_phone": view.masked_phone}


def join_request_summary(view: reviews.JoinRequestView) -> dict[str, Any]:
    return {**as_json(view, omit=("phone",)), "masked_phone": view.masked_phone}


def added_json(added: operators.OperatorAdded) -> dict[str, Any]:
    return {
        "operator": operator_json(added.operator),
        "initial_password_sent": added.initial_password_sent,
    }


def page_json(page: Page[Any], items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "items": items,
        "page": page.page,
        "per_page": page.per_page,
        "total": page.total,
        "pages": page.pages,
    }


def json_response(body: Mapping[str, Any], status: int = 200) -> Response:
    return Response(current_app.json.dumps(body), status=status, mimetype="application/json")


# --- the document -------------------------------------------------------------------------------


@bp.get("/openapi.json")
def openapi_document() -> Response:
    """The OpenAPI 3.1 description of this API (public, like discovery)."""
    return json_response(openapi.document())


# --- 操作员管理 ---------------------------------------------------------------------------------


@bp.get("/org/operators")
def operators_list() -> Response:
    """The list with search (name or phone), status filter and pages; phones masked."""
    page_number, per_page = page_args()
    page = operators.list_operators(
        db.session(),
        current_org(),
        query=query_text("query") or "",
        status=query_choice("status", OPERATOR_STATUSES),
        page=page_number,
        per_page=per_page,
    )
    return json_response(page_json(page, [operator_summary(item) for item in page.items]))


@bp.post("/org/operators")
def operator_add() -> Response:
    """【增加】: real-name check, account, initial password by SMS; 201 with its Location."""
    values = checked_fields(json_body(), ADD_FIELDS)
    added = operators.add_operator(
        db.session(),
        current_org(),
        name=values.get("name", ""),
        phone=values.get("phone", ""),
        actor=current_actor(),
    )
    response = json_response(added_json(added), status=201)
    response.headers["Location"] = url_for(".operator_detail", membership_id=added.operator.id)
    return response


@bp.get("/org/operators/<int:membership_id>")
def operator_detail(membership_id: int) -> Response:
    """【查询】: the details, with the full phone number."""
    view = operators.get_operator(db.session(), current_org(), membership_id)
    return json_response(operator_json(view))


@bp.patch("/org/operators/<int:membership_id>")
def operator_update(membership_id: int) -> Response:
    """【修改】: phone and status only; any other member goes to the service, which refuses it
    (400 ``read_only_field``, audited) as it refuses extra fields posted to the page."""
    body = json_body()
    values = checked_fields(body, PATCH_FIELDS, others=True)
    view = operators.update_operator(
        db.session(),
        current_org(),
        membership_id,
        phone=values.get("phone"),
        status=values.get("status"),
        actor=current_actor(),
        **read_only_members(body),
    )
    return json_response(operator_json(view))


def read_only_members(body: Mapping[str, Any]) -> dict[str, object]:
    """The body's members besides phone and status, for the service to refuse. A member named
    ``actor`` goes under another key: it must not stand in for the real one."""
    extra = {name: value for name, value in body.items() if name not in PATCH_FIELDS}
    if "actor" in extra:
        extra["posted_actor"] = extra.pop("actor")
    return extra


@bp.delete("/org/operators/<int:membership_id>")
def operator_delete(membership_id: int) -> Response:
    """【删除】: soft; sessions end and tokens are revoked. Answers with the deleted record."""
    view = operators.delete_operator(
        db.session(), current_org(), membership_id, actor=current_actor()
    )
    return json_response(operator_json(view))


# --- 用户审核 -----------------------------------------------------------------------------------


@bp.get("/org/reviews")
def reviews_list() -> Response:
    """The org's join requests, pending ones by default (``status=all`` for every one)."""
    page_number, per_page = page_args()
    status = query_choice("status", REVIEW_STATUSES) or JoinRequestStatus.PENDING.value
    page = reviews.list_join_requests(
        db.session(),
        current_org(),
        status=None if status == "all" else status,
        page=page_number,
        per_page=per_page,
    )
    return json_response(page_json(page, [join_request_summary(item) for item in page.items]))


@bp.get("/org/reviews/<int:request_id>")
def review_detail(request_id: int) -> Response:
    """One request with the applicant's full phone (what 通过 and 驳回 pages show)."""
    view = reviews.get_join_request(db.session(), current_org(), request_id)
    return json_response(join_request_json(view))


@bp.post("/org/reviews/<int:request_id>/approve")
def review_approve(request_id: int) -> Response:
    """通过: the applicant becomes an operator, initial password by SMS."""
    added = reviews.approve(db.session(), current_org(), request_id, actor=current_actor())
    return json_response(added_json(added))


@bp.post("/org/reviews/<int:request_id>/reject")
def review_reject(request_id: int) -> Response:
    """驳回 with a reason, which the applicant receives by SMS."""
    values = checked_fields(json_body(), REJECT_FIELDS)
    view = reviews.reject(
        db.session(),
        current_org(),
        request_id,
        reason=values.get("reason", ""),
        actor=current_actor(),
    )
    return json_response(join_request_json(view))
