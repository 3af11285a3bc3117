"""``POST /sign`` over real SoftHSM2 tokens: each algorithm verified with ``cryptography`` over the
exact payload bytes, PIN handling, token and certificate selection."""

from __future__ import annotations

import base64
import json

import PyKCS11
import pytest

from clients.ukey_agent.errors import AgentError
from clients.ukey_agent.pkcs11_signer import login, wrong_pin
from tests.agent.helpers import (
    ORIGIN,
    OTHER_ORIGIN,
    PIN,
    WRONG_PIN,
    b64url_decode,
    challenge,
    check_signed,
    sign_body,
)


@pytest.mark.parametrize(
    ("which", "rsa_pss", "alg"),
    [("rsa", False, "RS256"), ("rsa", True, "PS256"), ("ec", False, "ES256")],
)
def test_sign_verifies_over_the_canonical_payload(tokens, pki, agent, which, rsa_pss, alg):
    issued = getattr(pki, which)
    tokens.add(issued, extra_certs=pki.chain)
    nonce = challenge()

    response = agent(rsa_pss=rsa_pss).sign(body=sign_body(nonce=nonce))

    assert response.status_code == 200, response.json
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    fields = check_signed(response.json, issued=issued, alg=alg, nonce=nonce)
    assert fields["origin"] == ORIGIN
    assert response.json["chain"] == [base64.b64encode(pki.intermediate.der).decode()]


def test_origin_in_the_body_is_ignored(rsa_token, pki, agent):
    """A page cannot choose the origin that gets signed: only the Origin header counts."""
    nonce = challenge()
    body = sign_body(nonce=nonce, origin=OTHER_ORIGIN)

    response = agent().sign(body=body)

    assert response.status_code == 200
    fields = check_signed(response.json, issued=pki.rsa, alg="RS256", nonce=nonce)
    assert fields["origin"] == ORIGIN
    assert OTHER_ORIGIN.encode() not in b64url_decode(response.json["payload"])


def test_each_allowed_origin_gets_its_own_origin_signed(rsa_token, pki, agent):
    staging = "https://login-staging.example.cn"
    client = agent(origins=(ORIGIN, staging))
    nonce = challenge()

    response = client.sign(body=sign_body(nonce=nonce), origin=staging)

    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == staging
    assert check_signed(response.json, issued=pki.rsa, alg="RS256", nonce=nonce, origin=staging)


def test_signing_certificate_chosen_over_encryption_certificate(tokens, pki, agent):
    """The encryption key is imported first, so a naive "first key" choice would take it."""
    tokens.add(pki.encryption, extra_keys=[pki.rsa], extra_certs=pki.chain)
    nonce = challenge()

    response = agent().sign(body=sign_body(nonce=nonce))

    assert response.status_code == 200
    check_signed(response.json, issued=pki.rsa, alg="RS256", nonce=nonce)


def test_valid_certificate_preferred_over_expired_one(tokens, pki, agent):
    tokens.add(pki.expired_rsa, extra_keys=[pki.ec])
    nonce = challenge()

    response = agent().sign(body=sign_body(nonce=nonce))

    check_signed(response.json, issued=pki.ec, alg="ES256", nonce=nonce)


def test_no_signing_certificate(tokens, pki, agent):
    tokens.add(pki.encryption, extra_certs=pki.chain)

    response = agent().sign(body=sign_body())

    assert response.status_code == 404
    assert response.json["error"] == "no_signing_certificate"
    assert response.json["message"]


def test_no_token(tokens, agent):
    # the SoftHSM2 directory holds no initialised token: no UKey plugged in
    response = agent().sign(body=sign_body())

    assert response.status_code == 404
    assert response.json["error"] == "no_token"


def test_several_tokens_need_a_serial(tokens, pki, agent):
    tokens.add(pki.rsa, label="ukey-rsa")
    tokens.add(pki.ec, label="ukey-ec")
    client = agent()

    several = client.sign(body=sign_body())
    listed = {t["label"]: t["serial"] for t in client.status().json["tokens"]}
    nonce = challenge()
    chosen = client.sign(body=sign_body(nonce=nonce, token=listed["ukey-ec"]))
    unknown = client.sign(body=sign_body(token="0000000000000000"))

    assert several.status_code == 409
    assert several.json["error"] == "several_tokens"
    assert chosen.status_code == 200
    check_signed(chosen.json, issued=pki.ec, alg="ES256", nonce=nonce)
    assert unknown.status_code == 404
    assert unknown.json["error"] == "no_token"


# --- PIN ---------------------------------------------------------------------------------------


def test_wrong_pin_then_right_pin(rsa_token, pki, agent):
    client = agent()

    wrong = client.sign(body=sign_body(pin=WRONG_PIN))
    nonce = challenge()
    right = client.sign(body=sign_body(nonce=nonce))

    assert wrong.status_code == 401
    assert wrong.json["error"] == "wrong_pin"
    # SoftHSM2 sets CKF_USER_PIN_COUNT_LOW after a failure but gives no count.
    assert "retries_left" not in wrong.json
    assert right.status_code == 200
    check_signed(right.json, issued=pki.rsa, alg="RS256", nonce=nonce)


def test_logged_out_after_signing(rsa_token, module, agent):
    """The login state is the application's, so a second PyKCS11Lib on the same module (same
    process) sees it: after a signing, no session is logged in any more."""
    client = agent()
    assert client.sign(body=sign_body()).status_code == 200

    lib = PyKCS11.PyKCS11Lib().load(module)  # reuses the agent's initialised module
    try:
        slot = next(
            s
            for s in lib.getSlotList(tokenPresent=True)
            if lib.getTokenInfo(s).label.rstrip(" \x00") == rsa_token.label
        )
        session = lib.openSession(slot)
        state = session.getSessionInfo().state
        session.closeSession()
    finally:
        lib.unload()
    assert state == PyKCS11.CKS_RO_PUBLIC_SESSION


def test_softhsm_never_locks_the_pin(rsa_token, agent):
    """SoftHSM2 2.6.1 has no retry counter: twelve wrong PINs still answer ``wrong_pin`` and the
    right PIN still works. So ``pin_locked`` is tested with fake sessions below."""
    client = agent()
    answers = {client.sign(body=sign_body(pin=WRONG_PIN)).status_code for _ in range(12)}

    assert answers == {401}
    assert client.sign(body=sign_body()).status_code == 200


class FakeSession:
    """Stands in for a PyKCS11 session of a token that answers ``C_Login`` with ``codes``."""

    def __init__(self, *codes: int) -> None:
        self.codes = list(codes)
        self.calls: list[str] = []

    def login(self, pin: str) -> None:
        self.calls.append("login")
        code = self.codes.pop(0) if self.codes else PyKCS11.CKR_OK
        if code != PyKCS11.CKR_OK:
            raise PyKCS11.PyKCS11Error(code)

    def logout(self) -> None:
        self.calls.append("logout")


def _login_error(session: FakeSession, flags: int = 0) -> AgentError:
    with pytest.raises(AgentError) as caught:
        login(session, PIN, token_flags=lambda: flags)
    return caught.value


def test_pin_locked_by_the_token():
    error = _login_error(FakeSession(PyKCS11.CKR_PIN_LOCKED))

    assert (error.code, error.status) == ("pin_locked", 423)


def test_pin_locked_flag_stops_before_login():
    session = FakeSession()

    error = _login_error(session, flags=PyKCS11.CKF_USER_PIN_LOCKED)

    assert (error.code, error.status) == ("pin_locked", 423)
    assert session.calls == []


def test_wrong_pin_on_the_final_try_says_one_retry_left():
    error = _login_error(FakeSession(PyKCS11.CKR_PIN_INCORRECT), PyKCS11.CKF_USER_PIN_FINAL_TRY)

    assert (error.code, error.status, error.retries_left) == ("wrong_pin", 401, 1)
    assert error.body()["retries_left"] == 1


@pytest.mark.parametrize(
    ("flags", "code", "retries_left"),
    [
        (0, "wrong_pin", None),
        (PyKCS11.CKF_USER_PIN_COUNT_LOW, "wrong_pin", None),
        (PyKCS11.CKF_USER_PIN_FINAL_TRY, "wrong_pin", 1),
        (PyKCS11.CKF_USER_PIN_LOCKED, "pin_locked", None),
    ],
)
def test_wrong_pin_reads_the_token_flags(flags, code, retries_left):
    error = wrong_pin(flags)

    assert (error.code, error.retries_left) == (code, retries_left)


def test_already_logged_in_still_checks_this_pin():
    """A stale login (a failed logout) must not let a request sign without its own PIN."""
    session = FakeSession(PyKCS11.CKR_USER_ALREADY_LOGGED_IN, PyKCS11.CKR_PIN_INCORRECT)

    error = _login_error(session)

    assert error.code == "wrong_pin"
    assert session.calls == ["login", "logout", "login"]


def test_pin_locked_rendered_as_423(rsa_token, agent, monkeypatch):
    """The HTTP side of ``pin_locked``: the token's answer is simulated at the C_Login call."""
    client = agent()

    def locked(self, pin, user_type=PyKCS11.CKU_USER):
        raise PyKCS11.PyKCS11Error(PyKCS11.CKR_PIN_LOCKED)

    monkeypatch.setattr(PyKCS11.Session, "login", locked)
    response = client.sign(body=sign_body())

    assert response.status_code == 423
    assert response.json["error"] == "pin_locked"
    assert json.dumps(response.json, ensure_ascii=False).find("锁定") > 0
