"""HEAD is answered as GET is, without the body (RFC 9110 §9.3.2): link checkers and monitors
send it to pages that also take a form's POST, which must not take it for a submission."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import both_databases


def form_pages(app: Flask) -> list[str]:
    """Every page that is shown by GET and submitted by POST, and needs no part of its path."""
    return sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if {"GET", "POST"} <= (rule.methods or set()) and not rule.arguments
    )


def assert_head_answers_as_get(client: FlaskClient, paths: list[str]) -> None:
    for path in paths:
        shown = client.get(path)
        head = client.head(path)
        assert (path, head.status_code) == (path, shown.status_code)
        assert head.data == b""
        assert head.headers.get("Location") == shown.headers.get("Location")


@both_databases
def test_head_is_answered_as_get_on_every_form_page(app, client):
    paths = form_pages(app)
    assert "/login" in paths and "/admin/login" in paths
    assert_head_answers_as_get(client, paths)


@both_databases
@pytest.mark.usefixtures("enrolled")
def test_head_is_answered_as_get_for_a_platform_admin(app, client):
    paths = form_pages(app)
    assert any(path.startswith("/admin/clients") for path in paths)
    assert_head_answers_as_get(client, paths)
