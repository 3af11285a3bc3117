"""The canonical login payload (docs/ukey-protocol.md §2): exact form, fields, origin, time,
certificate binding; and decoding of the login form."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from idp.auth.cert.errors import (
    CertificateMismatchError,
    MalformedResponseError,
    OriginMismatchError,
    StaleTimestampError,
)
from idp.auth.cert.payload import (
    canonical_json,
    certificate_sha256,
    check_certificate_binding,
    check_origin,
    check_timestamp,
    origin_of,
    parse_payload,
)
from idp.auth.cert.verify import decode_login_form
from tests.pki import ORIGIN, b64url, login_payload, signed_login

NONCE = "q" * 43
CERT = b"\x30\x03\x02\x01\x01"
TS = 1_764_200_000


def fields(**changes) -> dict:
    body = {
        "cert_sha256": certificate_sha256(CERT),
        "nonce": NONCE,
        "origin": ORIGIN,
        "ts": TS,
        "typ": "ukey-login",
        "v": 1,
    }
    body.update(changes)
    return body


def test_the_agents_payload_parses():
    data = login_payload(cert_der=CERT, nonce=NONCE, origin=ORIGIN, ts=TS)
    login = parse_payload(data)
    assert (login.nonce, login.origin, login.ts) == (NONCE, ORIGIN, TS)
    assert login.cert_sha256 == certificate_sha256(CERT)


def test_canonical_form_matches_the_protocol_example():
    data = canonical_json(fields())
    assert data == (
        b'{"cert_sha256":"'
        + certificate_sha256(CERT).encode()
        + b'","nonce":"'
        + NONCE.encode()
        + b'","origin":"https://login.example.cn","ts":1764200000,"typ":"ukey-login","v":1}'
    )


def test_certificate_sha256_is_unpadded_base64url():
    value = certificate_sha256(CERT)
    assert len(value) == 43 and "=" not in value and "+" not in value and "/" not in value


NOT_CANONICAL = {
    "spaces": json.dumps(fields(), sort_keys=True).encode(),
    "unsorted": json.dumps(dict(reversed(fields().items())), separators=(",", ":")).encode(),
    "newline": canonical_json(fields()) + b"\n",
    "bom": b"\xef\xbb\xbf" + canonical_json(fields()),
    "escaped": canonical_json(fields()).replace(b'"nonce"', b'"\\u006eonce"'),
    "duplicate key": canonical_json(fields()).replace(b'"v":1}', b'"v":1,"v":1}'),
}


@pytest.mark.parametrize("data", NOT_CANONICAL.values(), ids=NOT_CANONICAL.keys())
def test_non_canonical_bytes_are_refused(data):
    with pytest.raises(MalformedResponseError):
        parse_payload(data)


BAD_FIELDS = {
    "extra field": fields(extra=1),
    "v 2": fields(v=2),
    "v true": fields(v=True),
    "v string": fields(v="1"),
    "v float": fields(v=1.0),
    "typ": fields(typ="ukey-logout"),
    "ts string": fields(ts=str(TS)),
    "ts float": fields(ts=TS + 0.5),
    "ts bool": fields(ts=True),
    "ts null": fields(ts=None),
    "nonce short": fields(nonce="abc"),
    "nonce chars": fields(nonce="a" * 40 + "+/="),
    "nonce number": fields(nonce=12345678901234567890),
    "origin empty": fields(origin=""),
    "origin list": fields(origin=[ORIGIN]),
    "origin long": fields(origin="https://" + "a" * 300),
    "cert_sha256 padded": fields(cert_sha256=certificate_sha256(CERT) + "="),
    "cert_sha256 hex": fields(cert_sha256="ab" * 32),
}


@pytest.mark.parametrize("body", BAD_FIELDS.values(), ids=BAD_FIELDS.keys())
def test_wrong_fields_are_refused(body):
    with pytest.raises(MalformedResponseError):
        parse_payload(canonical_json(body))


def test_missing_field_is_refused():
    body = fields()
    del body["ts"]
    with pytest.raises(MalformedResponseError):
        parse_payload(canonical_json(body))


@pytest.mark.parametrize(
    "data",
    [b"", b"not json", b"[1,2]", b'"text"', b"\xff\xfe", b'{"v":NaN}', b"{" + b" " * 2000 + b"}"],
)
def test_garbage_is_refused(data):
    with pytest.raises(MalformedResponseError):
        parse_payload(data)


# --- origin, time, certificate ------------------------------------------------------------------


def test_origin_must_be_exact():
    login = parse_payload(canonical_json(fields()))
    check_origin(login, ORIGIN)
    for other in ("https://login.example.cn/", "http://login.example.cn", "https://evil.example"):
        with pytest.raises(OriginMismatchError):
            check_origin(login, other)


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://login.example.cn/", "https://login.example.cn"),
        ("https://Login.Example.CN:443/path?q=1", "https://login.example.cn"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("http://localhost:80/", "http://localhost"),
        ("https://[::1]:8443/x", "https://[::1]:8443"),
    ],
)
def test_origin_of_issuer_urls(url, origin):
    assert origin_of(url) == origin


@pytest.mark.parametrize("offset", [-60, -1, 0, 1, 60])
def test_timestamps_within_the_skew_pass(offset):
    login = parse_payload(canonical_json(fields()))
    check_timestamp(login, now=datetime.fromtimestamp(TS + offset, UTC), skew=60)


@pytest.mark.parametrize("offset", [-61, 61, -86400, 10**9])
def test_timestamps_outside_the_skew_fail(offset):
    login = parse_payload(canonical_json(fields()))
    with pytest.raises(StaleTimestampError):
        check_timestamp(
            login, now=datetime.fromtimestamp(TS, UTC) + timedelta(seconds=offset), skew=60
        )


def test_payload_must_name_the_submitted_certificate():
    login = parse_payload(canonical_json(fields()))
    check_certificate_binding(login, CERT)
    with pytest.raises(CertificateMismatchError):
        check_certificate_binding(login, CERT + b"\x00")


# --- the form -----------------------------------------------------------------------------------


def test_form_round_trip(pki):
    response = signed_login(pki["good_ec"], nonce=NONCE)
    decoded = decode_login_form(**response.form())
    assert decoded.payload == response.payload
    assert decoded.signature == response.signature
    assert decoded.certificate == response.certificate
    assert decoded.chain == response.chain
    assert decoded.alg == "ES256"


def test_form_accepts_padding_and_an_empty_chain(pki):
    response = signed_login(pki["good_sm2"], nonce=NONCE)
    form = response.form() | {"payload": base64.urlsafe_b64encode(response.payload).decode()}
    form["chain"] = ""
    assert decode_login_form(**form).chain == []


BAD_FORMS = {
    "payload not base64": {"payload": "@@@"},
    "signature not base64": {"signature": "a b"},
    "certificate not base64": {"certificate": "!!"},
    "payload too long": {"payload": b64url(b"x" * 5000)},
    "chain not json": {"chain": "[oops"},
    "chain not list": {"chain": '{"a": 1}'},
    "chain numbers": {"chain": "[1, 2]"},
    "chain too long": {"chain": json.dumps(["AAAA"] * 9)},
    "chain entry not base64": {"chain": '["%%%"]'},
    "alg empty": {"alg": ""},
    "alg long": {"alg": "RS256" * 10},
}


@pytest.mark.parametrize("changes", BAD_FORMS.values(), ids=BAD_FORMS.keys())
def test_bad_forms_are_refused(pki, changes):
    form = signed_login(pki["good_ec"], nonce=NONCE).form() | changes
    with pytest.raises(MalformedResponseError):
        decode_login_form(**form)
