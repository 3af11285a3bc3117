"""SM2 through SKF, as far as it can be tested without a real SM2 UKey.

- The digest ``e = SM3(Z_A || M)`` is checked against gmalg, an independent SM2 implementation: a
  signature made here over the agent's ``e`` must verify with gmalg over ``M``, and the reverse.
- ``SkfSigner`` runs against ``fake_skf.c``, compiled here: real C calling convention, real
  structure layouts (DEVINFO, ECCSIGNATUREBLOB), the two-call enumeration protocol and PIN
  retry counts; the fake's ``SKF_ECCSignData`` signs with a software key through a callback.

What stays untested: any vendor's actual SKF library and token (see README, "SM2 and SKF").
"""

from __future__ import annotations

import base64
import ctypes
import json
import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import gmalg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

from clients.ukey_agent import sm2
from clients.ukey_agent.app import create_app
from clients.ukey_agent.config import AgentConfig
from clients.ukey_agent.errors import AgentError
from clients.ukey_agent.skf_signer import EccSignatureBlob, SkfSigner, pick_signature
from tests.agent.helpers import (
    ORG_NAME,
    PIN,
    PORT,
    USCC,
    WRONG_PIN,
    AgentClient,
    b64url_decode,
    challenge,
    expected_payload,
    issue,
    sign_body,
    uscc_extension,
)
from tests.conftest import missing

P256_OID = bytes.fromhex("06082a8648ce3d030107")
SM2_OID = bytes.fromhex("06082a811ccf5501822d")
G = (sm2.GX, sm2.GY)

Point = tuple[int, int] | None


# --- SM2 arithmetic written out for the test (affine coordinates) ----------------------------------


def _add(p: Point, q: Point) -> Point:
    if p is None:
        return q
    if q is None:
        return p
    (x1, y1), (x2, y2) = p, q
    if x1 == x2 and (y1 + y2) % sm2.P == 0:
        return None
    if p == q:
        slope = (3 * x1 * x1 + sm2.A) * pow(2 * y1, -1, sm2.P)
    else:
        slope = (y2 - y1) * pow(x2 - x1, -1, sm2.P)
    x3 = (slope * slope - x1 - x2) % sm2.P
    return x3, (slope * (x1 - x3) - y1) % sm2.P


def _mul(k: int, p: Point) -> Point:
    result: Point = None
    while k:
        if k & 1:
            result = _add(result, p)
        p = _add(p, p)
        k >>= 1
    return result


def sign_digest(e: bytes, private: int) -> bytes:
    """SM2 signing of a given ``e`` (GM/T 0003.2 §6.1 steps A3–A7), raw ``r || s``."""
    n = sm2.N
    while True:
        k = secrets.randbelow(n - 1) + 1
        point = _mul(k, G)
        assert point is not None
        r = (int.from_bytes(e, "big") + point[0]) % n
        if r == 0 or r + k == n:
            continue
        s = pow(1 + private, -1, n) * (k - r * private) % n
        if s:
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def verify_digest(e: bytes, signature: bytes, public_key: bytes) -> bool:
    """SM2 verification of a given ``e`` (GM/T 0003.2 §7.1 steps B5–B7)."""
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    public = (int.from_bytes(public_key[1:33], "big"), int.from_bytes(public_key[33:], "big"))
    point = _add(_mul(s, G), _mul((r + s) % sm2.N, public))
    return point is not None and (int.from_bytes(e, "big") + point[0]) % sm2.N == r


@pytest.fixture(scope="module")
def sm2_key() -> tuple[int, bytes]:
    private, public = gmalg.SM2().generate_keypair()
    return int.from_bytes(private, "big"), public


# --- the digest against gmalg -----------------------------------------------------------------------


def test_digest_matches_gmalg_verification(sm2_key):
    private, public = sm2_key
    message = b'{"nonce":"abc","typ":"ukey-login"}'

    signature = sign_digest(sm2.digest(message, public), private)

    assert gmalg.SM2(pk=public, uid=sm2.DEFAULT_ID).verify(message, signature[:32], signature[32:])
    other_id = gmalg.SM2(pk=public, uid=b"ALICE123@YAHOO.COM")
    assert not other_id.verify(message, signature[:32], signature[32:])
    assert sm2.verifies(message, signature, public)
    assert not sm2.verifies(message + b" ", signature, public)


def test_gmalg_signature_verifies_over_our_digest(sm2_key):
    private, public = sm2_key
    message = "统一认证登录".encode()
    r, s = gmalg.SM2(sk=private.to_bytes(32, "big"), uid=sm2.DEFAULT_ID, pk=public).sign(message)
    signature = r.rjust(32, b"\0") + s.rjust(32, b"\0")

    assert verify_digest(sm2.digest(message, public), signature, public)
    assert not verify_digest(
        sm2.digest(message, public, uid=b"ALICE123@YAHOO.COM"), signature, public
    )


def test_curve_constants():
    x, y = G
    assert (y * y - (x * x * x + sm2.A * x + sm2.B)) % sm2.P == 0
    assert _mul(sm2.N, G) is None


def test_z_a_layout(sm2_key):
    _, public = sm2_key
    fields = (
        (128).to_bytes(2, "big")
        + sm2.DEFAULT_ID
        + b"".join(v.to_bytes(32, "big") for v in (sm2.A, sm2.B, sm2.GX, sm2.GY))
        + public[1:]
    )

    assert sm2.z_a(public) == sm2.sm3(fields)
    with pytest.raises(ValueError):
        sm2.z_a(public[1:])


def test_signature_blob_alignment(sm2_key):
    private, public = sm2_key
    payload = b"payload"
    signature = sign_digest(sm2.digest(payload, public), private)
    right, left, bad = EccSignatureBlob(), EccSignatureBlob(), EccSignatureBlob()
    ctypes.memmove(ctypes.addressof(right) + 32, signature[:32], 32)
    ctypes.memmove(ctypes.addressof(right) + 96, signature[32:], 32)
    ctypes.memmove(ctypes.addressof(left), signature[:32], 32)
    ctypes.memmove(ctypes.addressof(left) + 64, signature[32:], 32)

    assert pick_signature(right, payload=payload, public_key=public) == signature
    assert pick_signature(left, payload=payload, public_key=public) == signature
    with pytest.raises(AgentError) as caught:
        pick_signature(bad, payload=payload, public_key=public)
    assert caught.value.code == "token_error"


# --- SkfSigner against the compiled fake ----------------------------------------------------------


def sm2_certificate(public_key: bytes, *, signing: bool = True) -> bytes:
    """A certificate whose key is ``public_key`` on the SM2 curve. ``cryptography`` cannot issue
    SM2 certificates, so a P-256 one is made and its curve OID and point (same lengths) are
    replaced; its signature no longer verifies, which the agent never checks (the provider does)."""
    stand_in = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORG_NAME),
            x509.NameAttribute(NameOID.COMMON_NAME, ORG_NAME),
        ]
    )
    der = issue(
        subject=name, key=stand_in, issuer=None, signing=signing, extensions=[uscc_extension()]
    ).der
    point = stand_in.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    assert der.count(P256_OID) == 1 and der.count(point) == 1
    return der.replace(P256_OID, SM2_OID).replace(point, public_key)


SIGNER_CB = ctypes.CFUNCTYPE(
    ctypes.c_int,
    ctypes.POINTER(ctypes.c_ubyte),
    ctypes.c_uint32,
    ctypes.POINTER(ctypes.c_ubyte),
    ctypes.POINTER(ctypes.c_ubyte),
)


@pytest.fixture(scope="session")
def fake_skf_path(tmp_path_factory) -> Path:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        missing("no C compiler (cc/gcc) to build the fake SKF library")
    assert compiler is not None
    output = tmp_path_factory.mktemp("skf") / "libfakeskf.so"
    source = Path(__file__).with_name("fake_skf.c")
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-O1", "-o", str(output), str(source)],
        check=True,
        capture_output=True,
    )
    return output


class FakeSkf:
    """Controls of the compiled fake (same process, same library instance as the agent's)."""

    def __init__(self, path: Path) -> None:
        self.lib = ctypes.CDLL(str(path))
        self.lib.fake_setup.argtypes = [
            ctypes.c_char_p,
            ctypes.c_uint32,
            ctypes.c_char_p,
            ctypes.c_uint32,
            SIGNER_CB,
            ctypes.c_uint32,
            ctypes.c_int,
            ctypes.c_int,
        ]
        self.callback = None

    def setup(
        self,
        *,
        cert: bytes,
        sign: Callable[[bytes], bytes],
        retries: int = 5,
        container_type: int = 2,
        devices: int = 1,
        left_aligned: bool = False,
    ) -> None:
        def on_sign(digest, length, r_out, s_out) -> int:
            signature = sign(bytes(digest[:length]))
            ctypes.memmove(r_out, signature[:32], 32)
            ctypes.memmove(s_out, signature[32:], 32)
            return 0

        self.callback = SIGNER_CB(on_sign)  # kept alive while the library may call it
        self.lib.fake_setup(
            cert,
            len(cert),
            PIN.encode(),
            retries,
            self.callback,
            container_type,
            devices,
            int(left_aligned),
        )

    @property
    def open_handles(self) -> int:
        return self.lib.fake_open_handles()

    @property
    def logged_in(self) -> bool:
        return bool(self.lib.fake_logged_in())

    def last_digest(self) -> bytes:
        out = ctypes.create_string_buffer(64)
        length = self.lib.fake_last_digest(out)
        return out.raw[:length]


@pytest.fixture
def fake(fake_skf_path, sm2_key) -> FakeSkf:
    private, public = sm2_key
    controls = FakeSkf(fake_skf_path)
    controls.setup(cert=sm2_certificate(public), sign=lambda e: sign_digest(e, private))
    return controls


@pytest.fixture
def skf_agent(fake_skf_path, fake) -> Iterator[AgentClient]:
    signer = SkfSigner.from_library(str(fake_skf_path))
    config = AgentConfig(
        allowed_origins=("https://login.example.cn",), port=PORT, skf_library=str(fake_skf_path)
    )
    yield AgentClient(create_app(config, signer), port=PORT)
    signer.close()


def test_status(skf_agent, fake):
    body = skf_agent.status().json

    assert body["tokens"] == [
        {
            "label": "fake-sm2",
            "serial": "FAKE0001",
            "manufacturer": "Fake GM Ltd",
            "model": "SKF Fake Issuer",
        }
    ]
    assert body["certificate"]["key_alg"] == "SM2"
    assert body["certificate"]["uscc"] == USCC
    assert fake.open_handles == 0


def test_sign(skf_agent, fake, sm2_key):
    _, public = sm2_key
    nonce = challenge()

    response = skf_agent.sign(body=sign_body(nonce=nonce))

    assert response.status_code == 200, response.json
    body = response.json
    payload, signature = b64url_decode(body["payload"]), b64url_decode(body["signature"])
    cert_der = base64.b64decode(body["certificate"])
    assert body["alg"] == "SM2"
    assert body["chain"] == []
    assert payload == expected_payload(
        cert_der=cert_der,
        nonce=nonce,
        origin="https://login.example.cn",
        ts=json.loads(payload)["ts"],
    )
    assert gmalg.SM2(pk=public, uid=sm2.DEFAULT_ID).verify(payload, signature[:32], signature[32:])
    assert fake.last_digest() == sm2.digest(payload, public)
    assert not fake.logged_in  # SKF_ClearSecureState after signing
    assert fake.open_handles == 0


def test_left_aligned_blob(skf_agent, fake, sm2_key):
    private, public = sm2_key
    fake.setup(
        cert=sm2_certificate(public), sign=lambda e: sign_digest(e, private), left_aligned=True
    )

    assert skf_agent.sign(body=sign_body()).status_code == 200


def test_wrong_pin_reports_retries_then_locks(skf_agent, fake, sm2_key):
    private, public = sm2_key
    fake.setup(cert=sm2_certificate(public), sign=lambda e: sign_digest(e, private), retries=2)

    first = skf_agent.sign(body=sign_body(pin=WRONG_PIN))
    second = skf_agent.sign(body=sign_body(pin=WRONG_PIN))
    after = skf_agent.sign(body=sign_body())

    assert (first.status_code, first.json["error"], first.json["retries_left"]) == (
        401,
        "wrong_pin",
        1,
    )
    assert (second.status_code, second.json["error"]) == (423, "pin_locked")
    assert (after.status_code, after.json["error"]) == (423, "pin_locked")
    assert fake.open_handles == 0


def test_token_signing_something_else_is_an_error(skf_agent, fake, sm2_key):
    """A library that hashes again, or a key that is not the certificate's, is caught here."""
    private, public = sm2_key
    fake.setup(cert=sm2_certificate(public), sign=lambda e: sign_digest(sm2.sm3(e), private))

    response = skf_agent.sign(body=sign_body())

    assert (response.status_code, response.json["error"]) == (500, "token_error")
    assert not fake.logged_in


@pytest.mark.parametrize(
    "setup",
    [
        {"container_type": 1},  # an RSA container
        {"signing": False},  # an SM2 certificate without digitalSignature
    ],
)
def test_no_signing_certificate(skf_agent, fake, sm2_key, setup):
    private, public = sm2_key
    cert = sm2_certificate(public, signing=setup.get("signing", True))
    fake.setup(
        cert=cert,
        sign=lambda e: sign_digest(e, private),
        container_type=setup.get("container_type", 2),
    )

    response = skf_agent.sign(body=sign_body())

    assert (response.status_code, response.json["error"]) == (404, "no_signing_certificate")
    assert fake.open_handles == 0


def test_several_devices(skf_agent, fake, sm2_key):
    private, public = sm2_key
    fake.setup(cert=sm2_certificate(public), sign=lambda e: sign_digest(e, private), devices=2)

    assert skf_agent.status().json["error"] == "several_tokens"
    assert skf_agent.sign(body=sign_body()).status_code == 409


def test_library_without_skf_functions(module):
    """SoftHSM2's module is a shared library without SKF_* symbols: refused at start."""
    with pytest.raises(AgentError) as caught:
        SkfSigner.from_library(module)
    assert caught.value.code == "token_error"
