"""Three instances share one database and one Redis: whatever a user or relying party started on
one instance goes on, with the same rules and counters, on any other."""

from __future__ import annotations

import time

import pytest
from joserfc import jws, jwt
from joserfc.jwk import KeySet

from idp.identity.models import Account, Membership
from tests.conftest import RegisteredClient, missing, register
from tests.flows import PASSWORD, Pkce, token_request
from tests.integration.auth.helpers import LOCKED, WRONG_CREDENTIALS, allow_resend, field_errors
from tests.multi.harness import ISSUER, Browser, Cluster, faketime_library, wait_until
from tests.multi.helpers import (
    PHONE,
    cert_login,
    count_rows,
    follow,
    form_token,
    log_in,
    redeem,
    refresh,
    seed_operator_and_rp,
    start_authorization,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

CERT_CLOCK_SKEW = 60  # IDP_CERT_CLOCK_SKEW's default


def jwks_of(browser: Browser, cluster: Cluster, name: str) -> dict:
    response = browser.at(cluster[name]).get("/.well-known/jwks.json")
    assert response.status_code == 200
    return dict(response.json())


def test_authorize_on_a_log_in_on_b_redeem_on_c_refresh_on_a(cluster, control, browser, outbox):
    _org, rp = seed_operator_and_rp(control)
    a, b, c = (browser.at(cluster[name]) for name in "ABC")
    pkce = Pkce.new()

    interaction = start_authorization(a, rp, pkce)
    resume = log_in(b, outbox, interaction=interaction)
    code = follow(c, resume)["code"]
    issued = redeem(c, rp, code, pkce.verifier)

    assert issued.status_code == 200, issued.text
    tokens = issued.json()
    id_token = jwt.decode(tokens["id_token"], KeySet.import_key_set(jwks_of(browser, cluster, "B")))
    assert id_token.claims["iss"] == ISSUER
    assert id_token.claims["phone_number"] == "+86" + PHONE
    refreshed = refresh(a, rp, tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["refresh_token"] != tokens["refresh_token"]
    replayed = redeem(b, rp, code, pkce.verifier)  # the code was used up on C
    assert (replayed.status_code, replayed.json()["error"]) == (400, "invalid_grant")


def test_an_sms_code_sent_through_a_is_accepted_on_b(cluster, control, browser, outbox):
    seed_operator_and_rp(control)
    a, b = browser.at(cluster["A"]), browser.at(cluster["B"])
    token = form_token(a)

    sent = a.post("/login/sms-code", data={"phone": PHONE, "csrf_token": token})
    assert sent.status_code == 200, sent.text
    code = outbox.last(PHONE, "login")["code"]
    logged_in = b.post(
        "/login",
        data={"phone": PHONE, "password": PASSWORD, "sms_code": code, "csrf_token": token},
    )

    assert (logged_in.status_code, logged_in.headers["Location"]) == (302, "/portal")
    again = browser.at(cluster["C"]).post(  # single use, on every instance
        "/login",
        data={"phone": PHONE, "password": PASSWORD, "sms_code": code, "csrf_token": token},
    )
    assert again.status_code == 400


def test_wrong_passwords_on_different_instances_lock_the_account_everywhere(
    cluster, control, browser, outbox
):
    seed_operator_and_rp(control)
    a = browser.at(cluster["A"])
    token = form_token(a)
    assert a.post("/login/sms-code", data={"phone": PHONE, "csrf_token": token}).ok
    code = outbox.last(PHONE, "login")["code"]

    for attempt, name in enumerate("ABCAB"):
        wrong = browser.at(cluster[name]).post(
            "/login",
            data={
                "phone": PHONE,
                "password": f"Wrong-{attempt}",
                "sms_code": code,
                "csrf_token": token,
            },
        )
        assert field_errors(wrong.text, "password") == [WRONG_CREDENTIALS]
    allow_resend(PHONE)
    assert a.post("/login/sms-code", data={"phone": PHONE, "csrf_token": token}).ok
    fresh_code = outbox.last(PHONE, "login")["code"]
    right = browser.at(cluster["C"]).post(
        "/login",
        data={"phone": PHONE, "password": PASSWORD, "sms_code": fresh_code, "csrf_token": token},
    )

    assert right.status_code == 429
    assert field_errors(right.text, "password") == [LOCKED]
    assert browser.cookie("idp_session") is None


def test_sms_limits_are_counted_across_instances(cluster, control, browser, outbox):
    """The 60 s resend interval and the 10 codes a day per (phone, browser) hold whichever
    instance each request reaches."""
    seed_operator_and_rp(control)
    token = form_token(browser.at(cluster["A"]))

    def ask(name: str):
        return browser.at(cluster[name]).post(
            "/login/sms-code", data={"phone": PHONE, "csrf_token": token}
        )

    assert ask("A").status_code == 200
    too_soon = ask("B")
    assert too_soon.status_code == 429
    assert 55 <= int(too_soon.headers["Retry-After"]) <= 60
    for name in "CABCABCAB":  # the 2nd to the 10th code of the day
        allow_resend(PHONE)
        assert ask(name).status_code == 200
    allow_resend(PHONE)
    eleventh = ask("C")
    assert (eleventh.status_code, eleventh.headers["Retry-After"]) == (429, "86400")
    assert len(outbox.messages()) == 10


def test_a_key_rotation_on_one_instance_is_seen_by_all(cluster, control, browser, outbox):
    """``idp keys rotate`` publishes the next key in every instance's JWKS at once, and once
    the JWKS cache lifetime has passed the next rotation makes every instance sign with it."""
    _org, rp = seed_operator_and_rp(control)
    published = cluster.idp("keys", "rotate", "--alg", "ES256")
    assert published.returncode == 0, published.stderr
    next_kid = published.stdout.split("next")[1].split()[0]

    def everywhere() -> bool:
        return all(
            next_kid in {k["kid"] for k in jwks_of(browser, cluster, n)["keys"]} for n in "ABC"
        )

    started = time.monotonic()
    wait_until(everywhere, "the next key in every JWKS", timeout=5)
    seen_after = time.monotonic() - started
    time.sleep(float(cluster.env["IDP_JWKS_MAX_AGE"]))
    activated = cluster.idp("keys", "rotate", "--alg", "ES256")
    assert activated.returncode == 0, activated.stderr
    assert f"active {next_kid}" in activated.stdout

    for name in "ABC":
        pkce = Pkce.new()
        client = browser.at(cluster[name])
        code = follow(client, log_in_or_resume(client, outbox, rp, pkce))["code"]
        id_token = redeem(client, rp, code, pkce.verifier).json()["id_token"]
        assert jws.extract_compact(id_token.encode()).protected["kid"] == next_kid
    assert seen_after < 5


def log_in_or_resume(client, outbox, rp, pkce) -> str:
    """Where the authorization goes on: the login page when the browser has no session yet,
    else straight to the relying party."""
    from urllib.parse import urlencode

    from tests.flows import authorize_params

    if client.http.cookies.get("idp_session"):
        params = authorize_params(rp.client_id, pkce)
        return str(client.get("/authorize?" + urlencode(params)).headers["Location"])
    return log_in(client, outbox, interaction=start_authorization(client, rp, pkce))


def test_a_logout_on_one_instance_ends_the_session_on_all(cluster, control, browser, outbox):
    seed_operator_and_rp(control)
    log_in(browser.at(cluster["A"]), outbox)
    for name in "ABC":
        assert browser.at(cluster[name]).get("/portal").status_code == 200

    b = browser.at(cluster["B"])
    assert b.post("/logout", data={"csrf_token": form_token(b, "/logout")}).status_code == 200

    for name in "ABC":
        portal = browser.at(cluster[name]).get("/portal")
        assert (portal.status_code, portal.headers["Location"]) == (302, "/login")


def test_deleting_an_operator_on_one_instance_ends_their_session_and_tokens_on_all(
    cluster, control, browser, outbox, multi_pki
):
    _org, rp = seed_operator_and_rp(control)
    pkce = Pkce.new()
    operator_a = browser.at(cluster["A"])
    code = follow(operator_a, log_in_or_resume(operator_a, outbox, rp, pkce))["code"]
    tokens = redeem(operator_a, rp, code, pkce.verifier).json()
    admin = Browser()
    assert cert_login(admin.at(cluster["B"]), admin.at(cluster["B"]), multi_pki).status_code == 302
    membership = membership_id(PHONE)

    console = admin.at(cluster["B"])
    path = f"/org/operators/{membership}/delete"
    deleted = console.post(path, data={"csrf_token": form_token(console, path)})

    assert deleted.status_code == 302, deleted.text[:800]
    for name in "AC":
        portal = browser.at(cluster[name]).get("/portal")
        assert (portal.status_code, portal.headers["Location"]) == (302, "/login")
        userinfo = browser.at(cluster[name]).get(
            "/oauth/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert userinfo.status_code == 401
    refused = refresh(browser.at(cluster["C"]), rp, tokens["refresh_token"])
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant")


def test_a_client_changed_on_one_instance_holds_at_the_next_request_on_all(
    cluster, control, browser
):
    """Instances keep a client's row between requests (idp.oidc.client_cache); a change made
    elsewhere (here by the control process) holds on each of them at its next request."""
    from idp import db
    from idp.oidc import clients

    backend = register(control, {"grant_types": ["client_credentials"], "scope": "org.operators"})
    own_token = {"grant_type": "client_credentials"}
    for name in "ABC":  # each instance keeps the row now
        assert token_request(browser.at(cluster[name]), own_token, auth=backend.auth).ok

    _client, secret = clients.rotate_secret(db.session(), backend.client_id)
    db.session().commit()

    rotated = RegisteredClient(backend.client_id, secret)
    for name in "ABC":
        old = token_request(browser.at(cluster[name]), own_token, auth=backend.auth)
        assert (old.status_code, old.json()["error"]) == (401, "invalid_client")
        assert token_request(browser.at(cluster[name]), own_token, auth=rotated.auth).ok

    clients.set_client_disabled(db.session(), backend.client_id, True, actor="platform")
    db.session().commit()

    for name in "ABC":
        refused = token_request(browser.at(cluster[name]), own_token, auth=rotated.auth)
        assert (refused.status_code, refused.json()["error"]) == (401, "invalid_client")


def membership_id(phone: str) -> int:
    from flask import current_app
    from sqlalchemy import select

    with current_app.extensions["idp.db"]() as session:
        found = session.scalar(select(Membership.id).join(Account).where(Account.phone == phone))
        assert found is not None
        return int(found)


def test_a_ukey_challenge_issued_by_a_is_answered_on_b(cluster, control, browser, multi_pki):
    answered = cert_login(browser.at(cluster["A"]), browser.at(cluster["B"]), multi_pki)

    assert (answered.status_code, answered.headers["Location"]) == (302, "/register")
    assert browser.at(cluster["C"]).get("/register").status_code == 200


def test_a_ukey_challenge_is_single_use_across_instances(cluster, control, multi_pki):
    first, second = Browser(), Browser()
    nonce_holder: list[str] = []
    answered = cert_login(
        first.at(cluster["A"]), first.at(cluster["B"]), multi_pki, keep_nonce=nonce_holder
    )
    assert answered.status_code == 302
    replayed = cert_login(
        second.at(cluster["C"]), second.at(cluster["C"]), multi_pki, nonce=nonce_holder[0]
    )
    assert replayed.status_code == 400
    assert second.cookie("idp_session") is None


def test_ukey_clock_skew_within_the_tolerance_is_accepted_beyond_it_refused(
    cluster, control, multi_pki
):
    """The agent's clock may be off by up to IDP_CERT_CLOCK_SKEW seconds, either way."""
    now = int(time.time())
    outcomes = {}
    for offset in (
        -CERT_CLOCK_SKEW + 5,
        CERT_CLOCK_SKEW - 5,
        -CERT_CLOCK_SKEW - 30,
        CERT_CLOCK_SKEW + 30,
    ):
        browser = Browser()
        answer = cert_login(
            browser.at(cluster["A"]), browser.at(cluster["B"]), multi_pki, ts=now + offset
        )
        outcomes[offset] = (answer.status_code, browser.cookie("idp_session") is not None)

    assert outcomes == {
        -CERT_CLOCK_SKEW + 5: (302, True),
        CERT_CLOCK_SKEW - 5: (302, True),
        -CERT_CLOCK_SKEW - 30: (400, False),
        CERT_CLOCK_SKEW + 30: (400, False),
    }
    assert count_rows(Account) == 0


def test_an_instance_whose_clock_is_ahead_judges_lifetimes_by_it(
    cluster, control, browser, outbox, multi_pki
):
    """Two more instances, their clocks 30 s and 700 s ahead: within a code's lifetime (60 s),
    an access token's (600 s) and the UKey skew (60 s) what was issued on A is accepted; beyond
    them it is refused, as it would be once that time had passed."""
    if faketime_library() is None:
        missing("libfaketime not installed (apt-get install libfaketime)")
    _org, rp = seed_operator_and_rp(control)
    a = browser.at(cluster["A"])
    pkce = Pkce.new()
    code = follow(a, log_in_or_resume(a, outbox, rp, pkce))["code"]
    later_pkce = Pkce.new()
    later_code = follow(a, log_in_or_resume(a, outbox, rp, later_pkce))["code"]

    with cluster.instances_with_clocks({"N": 30, "F": 700}) as (near, far):
        issued = redeem(browser.at(near), rp, code, pkce.verifier)
        expired = redeem(browser.at(far), rp, later_code, later_pkce.verifier)
        bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}
        userinfo = {
            name: browser.at(instance).get("/oauth/userinfo", headers=bearer).status_code
            for name, instance in (("near", near), ("far", far))
        }
        ukey = {}
        for name, instance in (("near", near), ("far", far)):
            admin = Browser()
            answer = cert_login(admin.at(cluster["A"]), admin.at(instance), multi_pki)
            ukey[name] = (answer.status_code, admin.cookie("idp_session") is not None)

    assert issued.status_code == 200, issued.text
    assert (expired.status_code, expired.json()["error"]) == (400, "invalid_grant")
    assert userinfo == {"near": 200, "far": 401}
    assert ukey == {"near": (302, True), "far": (400, False)}
