"""Property-based tests of the management API from its own OpenAPI document (schemathesis 4).

The schema is loaded from the app (``GET /api/v1/openapi.json`` through WSGI); every operation
runs a bounded, derandomized number of generated requests, valid and invalid ones, with an org
admin's bearer token, against an organisation that has operators and join requests (and next to
another organisation whose ids must stay unknown). Each answer must not be a server error, must
have a documented status code, content type and headers, must match the response schema, and
an invalid request must be refused.

The real-name check is the one true external edge replaced here: schemathesis invents names and
phones no sandbox file lists (that would be a documented 503 every time), so every pair gets a
verdict: MATCH, or MISMATCH for names ending in "X".
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from idp.orgs import openapi
from idp.realname import Verdict
from tests.conftest import make_operator
from tests.integration.console.helpers import add_join_request

MAX_EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


class EveryPairKnown:
    """A real-name check with a verdict for every pair (see the module docstring)."""

    def verify(self, *, name: str, phone: str) -> Verdict:
        return Verdict.MISMATCH if name.strip().endswith("X") else Verdict.MATCH


@pytest.fixture
def seeded(home_org, other_org) -> None:
    """Operators and join requests in both organisations, so that small ids exist."""
    for n in range(3):
        make_operator(home_org, name=f"操作员{n}", phone=f"1380013800{n}", first_login=n == 0)
        make_operator(other_org, name=f"他人{n}", phone=f"1390013900{n}", first_login=False)
        add_join_request(home_org.id, name=f"申请人{n}", phone=f"1370013700{n}")
        add_join_request(other_org.id, name=f"他申请{n}", phone=f"1360013600{n}")


@pytest.fixture
def api_schema(app, seeded, monkeypatch):
    monkeypatch.setitem(app.extensions, "idp.realname", EveryPairKnown())
    # Unknown query parameters are ignored, as by most HTTP APIs; the document cannot say so.
    config = SchemathesisConfig.from_dict({"generation": {"allow-extra-parameters": False}})
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, config=config)


# The operations, read from the document's paths (servers aside, it needs no app); the loaded
# schema must hold exactly these (see the last test).
OPERATIONS = [
    (method.upper(), path)
    for path, item in openapi.paths().items()
    for method in item
    if method != "parameters"
]


def has_input(method: str, path: str) -> bool:
    """Whether the operation takes anything a negative case could make invalid."""
    item = openapi.paths()[path]
    spec = item[method.lower()]
    return bool(item.get("parameters") or spec.get("parameters") or spec.get("requestBody"))


CASES = [
    pytest.param(method, path, mode, id=f"{method} {path} {mode.value}")
    for method, path in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode == GenerationMode.POSITIVE or has_input(method, path)
]


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_operation_conforms_to_the_document(api_schema, admin, method, path, mode):
    """Up to MAX_EXAMPLES generated requests of one operation, valid or invalid ones.

    (Not ``schemathesis.pytest.from_fixture``: its lazy loader reads ``Function._nodeid``,
    which pytest 9 no longer has.)"""
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case):
        case.call_and_validate(headers=admin.headers, checks=CHECKS)

    run()


def test_the_document_is_valid_openapi_3_1(api_schema):
    api_schema.validate()  # against the OpenAPI 3.1 schema (jsonschema_rs), raises if not
