"""A pending authorization request belongs to the browser that started it and to the login
that holds it: another browser or another login is refused (403, audited) on every step, and
the request stays usable by its owner."""

from __future__ import annotations

import pytest

from idp import db
from idp.oidc import interaction
from idp.oidc.models import AuthorizationCode
from tests.conftest import make_operator, register
from tests.flows import (
    PASSWORD,
    REDIRECT_URI,
    Pkce,
    authorize_params,
    csrf_token,
    follow_to_code,
    login,
    query_of,
)
from tests.integration.oidc.helpers import audit_count
from tests.integration.oidc.test_interactions import second_identity

REFUSED = "该登录请求不属于当前浏览器或当前登录账号"


@pytest.fixture
def other_person(org):
    return make_operator(org, name="李四", phone="13900139000", first_login=False)


@pytest.fixture
def consent_rp(app):
    return register(app, {"redirect_uris": [REDIRECT_URI], "require_consent": True})


def start(client, rp, **extra):
    params = authorize_params(rp.client_id, Pkce.new(), **extra)
    response = client.get("/authorize", query_string=params)
    assert response.status_code == 302, response.text
    return params, response.headers["Location"]


def snapshot(location):
    record = interaction.load(query_of(location)["interaction"])
    assert record is not None
    return record


def assert_refused(response, before):
    assert response.status_code == 403
    assert REFUSED in response.text
    assert snapshot_of(before) == before


def snapshot_of(record):
    """The stored record as it is now (compared whole: nothing of it changed)."""
    return interaction.load(record.id)


def test_consent_from_another_browser_is_refused(
    client, app, outbox, consent_rp, logged_in, other_person
):
    params, location = start(client, consent_rp)
    assert location.startswith("/authorize/consent")
    before = snapshot(location)
    stranger = app.test_client()
    assert login(stranger, outbox, phone=other_person.phone, password=PASSWORD).status_code == 302
    page = stranger.get(location)
    assert page.status_code == 403
    assert REFUSED in page.text
    # A consent page of the stranger's own supplies a valid CSRF token for the POST.
    _own, own_location = start(stranger, consent_rp)
    token = csrf_token(stranger.get(own_location).text)
    for data in ({"approve": "1"}, {"deny": "1"}):
        assert_refused(stranger.post(location, data={**data, "csrf_token": token}), before)
    assert audit_count("oidc.interaction_refused") == 3
    # The owner still completes it, with the state and PKCE challenge of the request.
    page = client.get(location)
    approved = client.post(location, data={"approve": "1", "csrf_token": csrf_token(page.text)})
    result = follow_to_code(client, {**params, **query_of(approved.headers["Location"])})
    assert result["state"] == params["state"]
    code = db.session().query(AuthorizationCode).one()
    assert code.account_id == logged_in.id
    assert code.code_challenge == params["code_challenge"]


def test_role_choice_from_another_browser_is_refused(
    client, app, org, outbox, rp, logged_in, other_person
):
    second_identity(app, org)
    _params, location = start(client, rp)
    assert location.startswith("/authorize/choose")
    before = snapshot(location)
    stranger = app.test_client()
    assert login(stranger, outbox, phone=other_person.phone, password=PASSWORD).status_code == 302
    page = stranger.get(location)
    assert page.status_code == 403
    token = csrf_token(stranger.get("/logout").text)  # a valid CSRF token of its own
    for data in ({"identity": f"{org.id}:cost_consulting:operator"}, {"cancel": "1"}):
        assert_refused(stranger.post(location, data={**data, "csrf_token": token}), before)
    assert client.get(location).status_code == 200


def test_resume_and_authorize_from_another_browser_are_refused(
    client, app, outbox, consent_rp, logged_in, other_person
):
    params, location = start(client, consent_rp)
    before = snapshot(location)
    stranger = app.test_client()
    assert login(stranger, outbox, phone=other_person.phone, password=PASSWORD).status_code == 302
    resumed = stranger.get(f"/authorize/resume?interaction={before.id}")
    assert_refused(resumed, before)
    replayed = stranger.get("/authorize", query_string={**params, "interaction": before.id})
    assert_refused(replayed, before)
    assert db.session().query(AuthorizationCode).count() == 0


def test_login_page_of_another_browser_cannot_take_the_request(
    client, app, outbox, consent_rp, other_person, operator
):
    """The victim starts a login; a stranger logs in on the victim's interaction id."""
    params, location = start(client, consent_rp)
    assert location.startswith("/login")
    before = snapshot(location)
    stranger = app.test_client()
    done = login(
        stranger, outbox, phone=other_person.phone, password=PASSWORD, interaction=before.id
    )
    assert done.status_code == 302
    assert done.headers["Location"] == f"/authorize/resume?interaction={before.id}"
    assert params["state"] not in done.headers["Location"]
    assert_refused(stranger.get(done.headers["Location"]), before)
    # The owner logs in on the same request and gets their code.
    mine = login(client, outbox, phone=operator.phone, password=PASSWORD, interaction=before.id)
    assert mine.headers["Location"].startswith("/authorize?")
    resumed = client.get(mine.headers["Location"])
    assert resumed.headers["Location"].startswith("/authorize/consent")
    assert params["state"] in before.query


def test_another_login_in_the_same_browser_is_refused(
    client, app, outbox, consent_rp, logged_in, other_person
):
    """Logging out and in as someone else (not via this request's login page) does not inherit
    the request."""
    _params, location = start(client, consent_rp)
    before = snapshot(location)
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/logout").text)})
    assert login(client, outbox, phone=other_person.phone, password=PASSWORD).status_code == 302
    assert_refused(client.get(location), before)
    assert_refused(client.get(f"/authorize/resume?interaction={before.id}"), before)


def test_relogin_on_the_request_s_own_login_page_takes_it_over(
    client, outbox, consent_rp, logged_in, other_person
):
    """prompt=login sends to the login page; whoever logs in there continues the request."""
    params, location = start(client, consent_rp, prompt="login")
    assert location.startswith("/login")
    record = snapshot(location)
    done = login(client, outbox, phone=other_person.phone, password=PASSWORD, interaction=record.id)
    consent = client.get(done.headers["Location"])
    assert consent.headers["Location"].startswith("/authorize/consent")
    page = client.get(consent.headers["Location"])
    approved = client.post(
        consent.headers["Location"], data={"approve": "1", "csrf_token": csrf_token(page.text)}
    )
    result = follow_to_code(client, {**params, **query_of(approved.headers["Location"])})
    assert result["state"] == params["state"]
    assert db.session().query(AuthorizationCode).one().account_id == other_person.id


def test_refusal_page_in_english(client, app, outbox, consent_rp, logged_in, other_person):
    _params, location = start(client, consent_rp)
    before = snapshot(location)
    stranger = app.test_client()
    assert login(stranger, outbox, phone=other_person.phone, password=PASSWORD).status_code == 302
    page = stranger.get(f"/authorize/resume?interaction={before.id}&lang=en")
    assert page.status_code == 403
    assert "does not belong to this browser or to the logged-in account" in page.text
