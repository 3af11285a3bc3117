"""The OpenAPI 3.1 document of the management API (``GET /api/v1/openapi.json``).

Written by hand next to ``idp.orgs.api`` and built from ``idp.orgs.api_contract`` (limits, statuses,
scopes), so the two cannot drift apart silently; tests check that every API route is documented
and every documented path is served, validate the document against the OpenAPI 3.1 schema and
run schemathesis against the app with it.
"""

from __future__ import annotations

from typing import Any

from idp.config import settings
from idp.identity.models import ID_MAX
from idp.identity.phone import PHONE_SCHEMA_PATTERN
from idp.orgs import api_contract as contract
from idp.pagination import MAX_PAGE, MAX_PER_PAGE
from idp.web import PROBLEM_JSON

JSON = "application/json"
# No C0/C1 control characters (what the API refuses in parameters and names).
NO_CONTROL = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$"
SECURITY_SCHEME = "orgAdminToken"
DATE_TIME = {"type": "string", "format": "date-time"}
OPTIONAL_DATE_TIME = {"type": ["string", "null"], "format": "date-time"}


def document() -> dict[str, Any]:
    """The whole document; ``servers`` is this provider's issuer."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "统一认证登录平台 · 企业管理员管理接口",
            "version": "1.0.0",
            "description": DESCRIPTION,
        },
        "servers": [{"url": settings().issuer}],
        "tags": [
            {
                "name": "操作员管理",
                "description": "The org's operators (the operations manual §1.3).",
            },
            {"name": "用户审核", "description": "Requests of staff to join the org."},
            {"name": "document", "description": "This description."},
        ],
        "security": [{SECURITY_SCHEME: []}],
        "paths": paths(),
        "components": {
            "securitySchemes": {SECURITY_SCHEME: security_scheme()},
            "schemas": schemas(),
            "parameters": parameters(),
            "responses": error_responses(),
        },
    }


DESCRIPTION = (
    "The org admin console's 操作员管理 and 用户审核 for relying parties, doing exactly what the "
    "console pages do. Every `/api/v1/org/` route needs a bearer access token that this "
    "provider issued to a relying party for an org admin (role `org_admin`), with the scope "
    "`org.operators` (operators) or `org.reviews` (join requests); it acts on the token's "
    "organisation only, and another organisation's ids answer 404. Errors are RFC 9457 "
    "problem details (`application/problem+json`) whose `code` is stable and whose `detail` "
    "is the message for the user. Request bodies are JSON objects of at most "
    f"{contract.MAX_BODY} bytes."
)


def security_scheme() -> dict[str, Any]:
    return {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "opaque",
        "description": (
            "An access token from the provider's token endpoint (authorization code flow of a "
            "registered relying party, org admin logged in with the enterprise UKey). Scopes, "
            "listed as the role names of each operation's security requirement (OpenAPI 3.1 "
            f"§4.8.30): `{contract.OPERATORS_SCOPE}` for 操作员管理, `{contract.REVIEWS_SCOPE}` for "
            "用户审核. A missing or dead token answers 401 with a `WWW-Authenticate: Bearer` "
            "challenge (RFC 6750 §3), a token without the scope 403 `insufficient_scope`, "
            "another role's token 403 `org_admin_required`. Over plain HTTP to a host other "
            "than the provider's own machine a token is refused unread: 400 "
            "`insecure_transport` (RFC 6750 §5.3)."
        ),
    }


# --- paths --------------------------------------------------------------------------------------


def paths() -> dict[str, Any]:
    org = f"{contract.PREFIX}/org"
    return {
        f"{contract.PREFIX}/openapi.json": {"get": openapi_operation()},
        f"{org}/operators": {"get": list_operators(), "post": add_operator()},
        f"{org}/operators/{{membership_id}}": {
            "parameters": [ref("parameters", "membership_id")],
            "get": get_operator(),
            "patch": update_operator(),
            "delete": delete_operator(),
        },
        f"{org}/reviews": {"get": list_reviews()},
        f"{org}/reviews/{{request_id}}": {
            "parameters": [ref("parameters", "request_id")],
            "get": get_review(),
        },
        f"{org}/reviews/{{request_id}}/approve": {
            "parameters": [ref("parameters", "request_id")],
            "post": approve_review(),
        },
        f"{org}/reviews/{{request_id}}/reject": {
            "parameters": [ref("parameters", "request_id")],
            "post": reject_review(),
        },
    }


def openapi_operation() -> dict[str, Any]:
    return {
        "operationId": "getOpenApiDocument",
        "tags": ["document"],
        "summary": "This OpenAPI document",
        "security": [],
        "responses": {
            "200": {
                "description": "The document.",
                "content": {JSON: {"schema": {"type": "object"}}},
            }
        },
    }


def list_operators() -> dict[str, Any]:
    return operation(
        "listOperators",
        "操作员列表",
        "The org's operators, newest first; phones masked. Without `status`: every operator "
        "not deleted.",
        scope=contract.OPERATORS_SCOPE,
        parameters=[
            ref("parameters", "query"),
            ref("parameters", "operator_status"),
            ref("parameters", "page"),
            ref("parameters", "per_page"),
        ],
        ok=("200", "One page of operators.", "OperatorPage"),
        errors=[],
    )


def add_operator() -> dict[str, Any]:
    spec = operation(
        "addOperator",
        "【增加】",
        "Real-name check (手机二要素校验) of name and phone, then the operator account (active, "
        "must change its password at the first login) with a random initial password sent by "
        "SMS. Nothing is saved on a mismatch (400 `realname_mismatch`), without a verdict "
        "(503 `realname_unavailable`), for a phone that already is this org's operator (409) "
        "or when the SMS fails (503).",
        scope=contract.OPERATORS_SCOPE,
        body="NewOperator",
        ok=("201", "The operator was added.", "OperatorAdded"),
        errors=["409", "413", "415", "503"],
    )
    spec["responses"]["201"]["headers"] = {
        "Location": {
            "description": "The new operator's URL.",
            "required": True,
            "schema": {"type": "string", "format": "uri-reference"},
        }
    }
    return spec


def get_operator() -> dict[str, Any]:
    return operation(
        "getOperator",
        "【查询】",
        "One operator of the org, with the full phone number.",
        scope=contract.OPERATORS_SCOPE,
        ok=("200", "The operator.", "Operator"),
        errors=["404"],
    )


def update_operator() -> dict[str, Any]:
    return operation(
        "updateOperator",
        "【修改】",
        "Only the phone (re-checked with the real-name check against the unchanged name) and "
        "the status (active/disabled). Any other member is a read-only field: 400 "
        "`read_only_field`, nothing changed. Disabling ends the operator's sessions and "
        "revokes their tokens for this org. A new phone is a new credential: every login "
        "session, code and token of the operator's account ends.",
        scope=contract.OPERATORS_SCOPE,
        body="OperatorChanges",
        ok=("200", "The operator after the change.", "Operator"),
        errors=["404", "409", "413", "415", "503"],
    )


def delete_operator() -> dict[str, Any]:
    return operation(
        "deleteOperator",
        "【删除】",
        "Soft delete (实际是将操作员账户置为不可使用): the operator can no longer log in, their "
        "login sessions end and their access and refresh tokens for this org are revoked at "
        "once. The record stays for the audit trail (status `deleted`).",
        scope=contract.OPERATORS_SCOPE,
        ok=("200", "The deleted operator.", "Operator"),
        errors=["404", "409"],
    )


def list_reviews() -> dict[str, Any]:
    return operation(
        "listReviews",
        "用户审核列表",
        "The org's join requests, newest first; pending ones unless `status` says otherwise. "
        "Requests past their time are marked expired first.",
        scope=contract.REVIEWS_SCOPE,
        parameters=[
            ref("parameters", "review_status"),
            ref("parameters", "page"),
            ref("parameters", "per_page"),
        ],
        ok=("200", "One page of join requests.", "JoinRequestPage"),
        errors=[],
    )


def get_review() -> dict[str, Any]:
    return operation(
        "getReview",
        "申请详情",
        "One join request of the org, with the applicant's full phone number.",
        scope=contract.REVIEWS_SCOPE,
        ok=("200", "The join request.", "JoinRequest"),
        errors=["404"],
    )


def approve_review() -> dict[str, Any]:
    return operation(
        "approveReview",
        "通过",
        "The applicant becomes an active operator, as by 【增加】 (initial password by SMS). "
        "409 for a decided or expired request; nothing changes when the SMS fails (503).",
        scope=contract.REVIEWS_SCOPE,
        ok=("200", "The applicant is now an operator.", "OperatorAdded"),
        errors=["404", "409", "503"],
    )


def reject_review() -> dict[str, Any]:
    return operation(
        "rejectReview",
        "驳回",
        "Closes the request with the reason, which the applicant receives by SMS. 409 for a "
        "decided or expired request; nothing changes when the SMS fails (503).",
        scope=contract.REVIEWS_SCOPE,
        body="Rejection",
        ok=("200", "The rejected request.", "JoinRequest"),
        errors=["404", "409", "413", "415", "503"],
    )


# What any operation can answer about its token: sent over plain HTTP (400), missing or dead
# (401), without the scope or of another role (403).
TOKEN_ERRORS = ("400", "401", "403")


def operation(
    operation_id: str,
    summary: str,
    description: str,
    *,
    scope: str,
    ok: tuple[str, str, str],
    errors: list[str],
    parameters: list[dict[str, Any]] | None = None,
    body: str | None = None,
) -> dict[str, Any]:
    """One operation: its scope, its success answer and the problem answers it can give
    (``errors``, besides ``TOKEN_ERRORS``)."""
    status, text, schema = ok
    spec: dict[str, Any] = {
        "operationId": operation_id,
        "tags": ["操作员管理" if scope == contract.OPERATORS_SCOPE else "用户审核"],
        "summary": summary,
        "description": description,
        "security": [{SECURITY_SCHEME: [scope]}],
        "responses": {
            status: {"description": text, "content": {JSON: {"schema": ref("schemas", schema)}}},
            **{code: ref("responses", code) for code in sorted({*TOKEN_ERRORS, *errors})},
        },
    }
    if parameters:
        spec["parameters"] = parameters
    if body:
        spec["requestBody"] = {
            "required": True,
            "content": {JSON: {"schema": ref("schemas", body)}},
        }
    return spec


def ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


# --- components ---------------------------------------------------------------------------------


def parameters() -> dict[str, Any]:
    def in_query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "in": "query", "description": description, "schema": schema}

    def in_path(name: str, description: str) -> dict[str, Any]:
        schema = {"type": "integer", "minimum": 1, "maximum": ID_MAX}
        return {
            "name": name,
            "in": "path",
            "required": True,
            "description": description,
            "schema": schema,
        }

    return {
        "membership_id": in_path("membership_id", "The operator's id."),
        "request_id": in_path("request_id", "The join request's id."),
        "query": in_query(
            "query",
            "Part of the name or of the phone number.",
            {
                "type": "string",
                "maxLength": contract.QUERY_PARAMS["query"].max_length,
                "pattern": NO_CONTROL,
            },
        ),
        "operator_status": in_query(
            "status",
            "Only operators of this status (default: all but deleted ones).",
            {"type": "string", "enum": contract.OPERATOR_STATUSES},
        ),
        "review_status": in_query(
            "status",
            "Only requests of this status; `all` for every request.",
            {"type": "string", "enum": contract.REVIEW_STATUSES, "default": "pending"},
        ),
        "page": in_query(
            "page",
            "Page number.",
            {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1},
        ),
        "per_page": in_query(
            "per_page",
            "Items per page.",
            {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_PER_PAGE,
                "default": contract.PER_PAGE,
            },
        ),
    }


def schemas() -> dict[str, Any]:
    return {
        "Problem": problem_schema(),
        **operator_schemas(),
        **review_schemas(),
        **request_schemas(),
    }


def problem_schema() -> dict[str, Any]:
    return strict_object(
        {
            "type": {
                "type": "string",
                "format": "uri-reference",
                "description": "Always `about:blank`: `code` tells the problems apart.",
            },
            "title": {"type": "string", "description": "The HTTP status phrase."},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string", "description": "The message for the user."},
            "code": {
                "type": "string",
                "description": (
                    "Stable error code, e.g. `realname_mismatch`, `realname_unavailable`, "
                    "`operator_exists`, `read_only_field`, `operator_not_found`, "
                    "`join_request_decided`, `invalid_token`, `insufficient_scope`, "
                    "`org_admin_required`, `malformed_json`, `request_entity_too_large`, "
                    "`insecure_transport`."
                ),
            },
            "field": {"type": "string", "description": "The member or parameter at fault."},
        },
        optional=("field",),
    )


def operator_schemas() -> dict[str, Any]:
    summary = {
        "id": {"type": "integer", "minimum": 1},
        "name": {"type": "string"},
        "masked_phone": {"type": "string", "description": "e.g. 138****8000"},
        "status": {"type": "string", "enum": contract.OPERATOR_STATUSES},
        "created_by": {
            "type": "string",
            "description": "Who added the operator: `org_admin:<org id>`, `cli`, …",
        },
        "created_at": DATE_TIME,
        "last_login_at": OPTIONAL_DATE_TIME,
    }
    detail = {
        **summary,
        "phone": {"type": "string"},
        "updated_at": OPTIONAL_DATE_TIME,
        "deleted_at": OPTIONAL_DATE_TIME,
    }
    return {
        "OperatorSummary": strict_object(summary),
        "Operator": strict_object(detail),
        "OperatorPage": page_of("OperatorSummary"),
        "OperatorAdded": strict_object(
            {
                "operator": ref("schemas", "Operator"),
                "initial_password_sent": {
                    "type": "boolean",
                    "description": (
                        "False when the person already had an account: they were told by SMS "
                        "to use their existing password."
                    ),
                },
            }
        ),
    }


def review_schemas() -> dict[str, Any]:
    summary = {
        "id": {"type": "integer", "minimum": 1},
        "name": {"type": "string"},
        "masked_phone": {"type": "string"},
        "status": {"type": "string", "enum": contract.REVIEW_STATUSES[:-1]},
        "reason": {"type": "string", "description": "The rejection reason (驳回原因)."},
        "created_at": DATE_TIME,
        "expires_at": DATE_TIME,
        "decided_at": OPTIONAL_DATE_TIME,
        "decided_by": {"type": "string"},
    }
    return {
        "JoinRequestSummary": strict_object(summary),
        "JoinRequest": strict_object({**summary, "phone": {"type": "string"}}),
        "JoinRequestPage": page_of("JoinRequestSummary"),
    }


def request_schemas() -> dict[str, Any]:
    phone = {
        "type": "string",
        "maxLength": contract.ADD_FIELDS["phone"].max_length,
        "pattern": PHONE_SCHEMA_PATTERN,
        "description": "11-digit mainland mobile number.",
    }
    reason = contract.REJECT_FIELDS["reason"]
    return {
        "NewOperator": strict_object(
            {
                "name": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": contract.ADD_FIELDS["name"].max_length,
                    "pattern": "\\S",
                    "description": "The name as on the ID card (no control characters).",
                },
                "phone": phone,
            }
        ),
        "OperatorChanges": strict_object(
            {
                "phone": {**phone, "maxLength": contract.PATCH_FIELDS["phone"].max_length},
                "status": {
                    "type": "string",
                    "enum": contract.EDITABLE_STATUSES,
                    "maxLength": contract.PATCH_FIELDS["status"].max_length,
                },
            },
            optional=("phone", "status"),
        ),
        "Rejection": strict_object(
            {
                "reason": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": reason.max_length,
                    "pattern": "\\S",
                    "description": "Sent to the applicant by SMS (one line; whitespace collapsed).",
                }
            }
        ),
    }


def page_of(item: str) -> dict[str, Any]:
    return strict_object(
        {
            "items": {"type": "array", "items": ref("schemas", item)},
            "page": {"type": "integer", "minimum": 1},
            "per_page": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
            "total": {"type": "integer", "minimum": 0},
            "pages": {"type": "integer", "minimum": 1},
        }
    )


def strict_object(properties: dict[str, Any], *, optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """An object with exactly these members (all required unless ``optional``)."""
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
        "additionalProperties": False,
    }


ERROR_TEXTS = {
    "400": "Invalid input: a parameter or member with the wrong type, length or value, or "
    "refused by the service (e.g. `realname_mismatch`, `read_only_field`); or the token sent "
    "over plain HTTP (`insecure_transport`).",
    "401": "No bearer token, or it is expired, revoked or may no longer act.",
    "403": "`insufficient_scope` or `org_admin_required`.",
    "404": "No such object in the token's organisation.",
    "409": "Conflicts with the current state (e.g. `operator_exists`, `operator_deleted`, "
    "`join_request_decided`).",
    "413": f"The body is larger than {contract.MAX_BODY} bytes.",
    "415": "The body is not `application/json`.",
    "503": "The real-name check has no verdict (`realname_unavailable`) or the SMS could not "
    "be sent; nothing was saved.",
}


def error_responses() -> dict[str, Any]:
    problem = {PROBLEM_JSON: {"schema": ref("schemas", "Problem")}}
    responses: dict[str, Any] = {
        code: {"description": text, "content": problem} for code, text in ERROR_TEXTS.items()
    }
    challenge = {
        "description": "RFC 6750 §3 Bearer challenge.",
        "schema": {"type": "string", "pattern": "^Bearer"},
    }
    responses["401"]["headers"] = {"WWW-Authenticate": {**challenge, "required": True}}
    responses["403"]["headers"] = {"WWW-Authenticate": challenge}
    return responses
