"""``GET /metrics`` as a Prometheus scraper sees it: a login and a token request move the
counters they stand for, labels carry no phone, and only the configured networks (or the
bearer token) may read it.

The counters live in the process (as in one server worker), so each test compares a scrape
before with a scrape after.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from tests.flows import (
    PASSWORD,
    Pkce,
    authorize_params,
    csrf_token,
    follow_to_code,
    login,
    token_request,
)

# Not in the default 127.0.0.1/32, yet loopback: development mode answers loopback clients only.
OUTSIDE = {"REMOTE_ADDR": "127.0.113.5"}
TOKEN = "scrape-token-0123456789abcdef"


def scrape(client: FlaskClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.mimetype == "text/plain"
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before: dict[Any, float], after: dict[Any, float], name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def test_a_login_and_a_token_request_move_their_counters(
    client: FlaskClient, outbox: Any, operator: Any, rp: Any
) -> None:
    before = scrape(client)

    assert login(client, outbox, phone=operator.phone, password=PASSWORD).status_code == 302
    pkce = Pkce.new()
    params = authorize_params(rp.client_id, pkce)
    code = follow_to_code(client, params)["code"]
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": params["redirect_uri"],
        "code_verifier": pkce.verifier,
    }
    assert token_request(client, data, auth=rp.auth).status_code == 200
    after = scrape(client)

    assert delta(before, after, "idp_logins_total", method="password", outcome="success") == 1
    assert delta(before, after, "idp_tokens_issued_total", grant_type="authorization_code") == 1
    assert delta(before, after, "idp_sms_total", outcome="queued") == 1
    assert delta(before, after, "idp_sms_total", outcome="sent") == 1
    token_answers = dict(endpoint="oidc.token", method="POST", status="200")
    assert delta(before, after, "idp_http_requests_total", **token_answers) == 1
    assert (
        delta(before, after, "idp_http_request_duration_seconds_count", endpoint="oidc.token") == 1
    )
    assert (
        delta(
            before,
            after,
            "idp_http_requests_total",
            endpoint="auth.login",
            method="POST",
            status="302",
        )
        == 1
    )


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"lockout_threshold": 1, "metrics_token": TOKEN}


def test_wrong_passwords_and_the_lockout_are_counted_without_the_phone(
    client: FlaskClient, outbox: Any, operator: Any
) -> None:
    before = scrape(client)
    page = client.get("/login")
    token = csrf_token(page.text)
    client.post("/login/sms-code", data={"phone": operator.phone, "csrf_token": token})
    code = outbox.last(operator.phone, "login")["code"]
    form = {"phone": operator.phone, "password": "wrong", "sms_code": code, "csrf_token": token}

    first, second = client.post("/login", data=form), client.post("/login", data=form)
    after = scrape(client)

    assert (first.status_code, second.status_code) == (400, 429)  # wrong, then locked
    assert delta(before, after, "idp_logins_total", method="password", outcome="login_failed") == 1
    assert (
        delta(before, after, "idp_logins_total", method="password", outcome="account_locked") == 1
    )
    assert delta(before, after, "idp_lockouts_total", scope="account") == 1
    label_values = {value for _name, labels in after for _label, value in labels}
    assert not any(operator.phone[-4:] in value for value in label_values)
    assert operator.phone not in client.get("/metrics").text


def test_refused_from_an_address_outside_the_configured_networks(client: FlaskClient) -> None:
    refused = client.get("/metrics", environ_base=OUTSIDE)
    wrong_token = client.get(
        "/metrics", environ_base=OUTSIDE, headers={"Authorization": "Bearer not-the-token"}
    )

    assert refused.status_code == 403
    assert "idp_" not in refused.text
    assert wrong_token.status_code == 403


def test_the_bearer_token_is_let_in_from_anywhere(client: FlaskClient) -> None:
    response = client.get(
        "/metrics", environ_base=OUTSIDE, headers={"Authorization": f"Bearer {TOKEN}"}
    )

    assert response.status_code == 200
    assert "idp_http_requests_total" in response.text


class TestConfiguredNetworks:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"metrics_networks": "127.0.113.0/24"}

    def test_a_configured_network_is_let_in_and_loopback_no_longer(
        self, client: FlaskClient
    ) -> None:
        assert client.get("/metrics", environ_base=OUTSIDE).status_code == 200
        assert client.get("/metrics").status_code == 403
