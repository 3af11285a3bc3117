"""The OpenAPI document matches the implementation: every API route of ``app.url_map`` is
documented with its methods and path parameters, every documented operation is served, the
document is valid OpenAPI 3.1 and its limits are the ones the API enforces."""

from __future__ import annotations

import re

import jsonschema_rs
import pytest
from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR

from idp.orgs import api_contract as api
from tests.integration.api.helpers import assert_problem

DOC = "/api/v1/openapi.json"
IGNORED_METHODS = {"HEAD", "OPTIONS"}  # added by Flask to every GET / every route


def served_operations(app) -> set[tuple[str, str]]:
    """(method, OpenAPI path) of every /api/v1/ rule, ``<int:x>`` written ``{x}``."""
    found = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(api.PREFIX + "/"):
            continue
        path = re.sub(r"<(?:[a-z]+(?:\([^)]*\))?:)?([a-z_]+)>", r"{\1}", rule.rule)
        found |= {(method, path) for method in (rule.methods or set()) - IGNORED_METHODS}
    return found


def documented_operations(document) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method != "parameters"
    }


@pytest.fixture
def document(client):
    response = client.get(DOC)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.json


def test_every_api_route_is_documented_and_every_documented_operation_is_served(app, document):
    assert served_operations(app) == documented_operations(document)
    assert all(path.startswith(api.PREFIX + "/") for _method, path in served_operations(app))


def test_path_parameters_are_documented_with_the_route_names(app, document):
    for path, item in document["paths"].items():
        names = set(re.findall(r"{([a-z_]+)}", path))
        declared = {p["$ref"].rsplit("/", 1)[1] for p in item.get("parameters", [])}
        assert names == declared, path


def test_the_document_is_valid_openapi_3_1(document):
    assert document["openapi"] == "3.1.0"
    OPENAPI_31_VALIDATOR.validate(document)
    for name, schema in document["components"]["schemas"].items():
        assert jsonschema_rs.meta.is_valid(schema), name


def test_the_servers_url_is_the_issuer(document, settings):
    assert document["servers"] == [{"url": settings.issuer}]


def test_every_org_operation_needs_the_bearer_token_with_its_scope(document):
    scheme = document["components"]["securitySchemes"]["orgAdminToken"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            if path == DOC:
                assert operation["security"] == []
                continue
            scope = "org.operators" if "/org/operators" in path else "org.reviews"
            assert operation["security"] == [{"orgAdminToken": [scope]}], (method, path)
            for status in ("400", "401", "403"):
                assert operation["responses"][status] == {
                    "$ref": f"#/components/responses/{status}"
                }


def test_request_bodies_are_closed_objects_with_the_enforced_limits(document):
    schemas = document["components"]["schemas"]
    limits = {
        "NewOperator": api.ADD_FIELDS,
        "OperatorChanges": api.PATCH_FIELDS,
        "Rejection": api.REJECT_FIELDS,
    }
    for name, fields in limits.items():
        schema = schemas[name]
        assert schema["additionalProperties"] is False, name
        assert set(schema["properties"]) == set(fields), name
        for field, text in fields.items():
            assert schema["properties"][field]["maxLength"] == text.max_length, (name, field)
    assert schemas["OperatorChanges"]["required"] == []
    assert schemas["OperatorChanges"]["properties"]["status"]["enum"] == ["active", "disabled"]


def test_error_answers_are_problem_details(document):
    for status, response in document["components"]["responses"].items():
        content = response["content"]
        assert list(content) == ["application/problem+json"], status
        assert content["application/problem+json"]["schema"] == {
            "$ref": "#/components/schemas/Problem"
        }
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "code"}


def test_the_document_needs_no_token_and_is_not_cached(client):
    response = client.get(DOC)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"


def test_an_unknown_api_path_or_method_answers_with_problem_details(client):
    assert_problem(client.get("/api/v1/org/nothing"), 404, "not_found")
    refused = assert_problem(client.put("/api/v1/org/operators"), 405, "method_not_allowed")
    assert refused["detail"] == "不支持该请求方法"
    allowed = client.put("/api/v1/org/operators").headers["Allow"]
    assert set(allowed.split(", ")) == {"GET", "HEAD", "OPTIONS", "POST"}
