"""Login signatures: RS256, PS256 (salt 32), ES256 and SM2 (raw r||s), the algorithm must fit
the key, and SM2 interoperates with OpenSSL (user ID 1234567812345678)."""

from __future__ import annotations

import shutil
import subprocess

import gmalg
import pytest
from asn1crypto.algos import DSASignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding

from idp.auth.cert.errors import AlgorithmMismatchError, BadSignatureError, MalformedResponseError
from idp.auth.cert.payload import key_description, key_kind, verify_signature
from tests.pki import Sm2Key, ec_key, rsa_key, sign_payload

MESSAGE = b'{"cert_sha256":"x","nonce":"y","origin":"https://a","ts":1,"typ":"ukey-login","v":1}'
SM2_ORDER = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123

CASES = [("good_rsa", "RS256"), ("good_rsa", "PS256"), ("good_ec", "ES256"), ("good_sm2", "SM2")]


@pytest.mark.parametrize(("leaf", "alg"), CASES)
def test_valid_signatures_verify(pki, leaf, alg):
    signature = sign_payload(pki[leaf].key, alg, MESSAGE)
    verify_signature(pki[leaf].cert, alg, MESSAGE, signature)


@pytest.mark.parametrize(("leaf", "alg"), CASES)
def test_tampered_payloads_fail(pki, leaf, alg):
    signature = sign_payload(pki[leaf].key, alg, MESSAGE)
    with pytest.raises(BadSignatureError) as caught:
        verify_signature(pki[leaf].cert, alg, MESSAGE.replace(b"ts", b"tS"), signature)
    assert type(caught.value) is BadSignatureError


@pytest.mark.parametrize(("leaf", "alg"), CASES)
def test_tampered_signatures_fail(pki, leaf, alg):
    signature = bytearray(sign_payload(pki[leaf].key, alg, MESSAGE))
    signature[5] ^= 1
    with pytest.raises(BadSignatureError):
        verify_signature(pki[leaf].cert, alg, MESSAGE, bytes(signature))


@pytest.mark.parametrize(("leaf", "alg"), CASES)
def test_another_key_of_the_same_kind_fails(pki, leaf, alg):
    key = {"good_rsa": rsa_key, "good_ec": ec_key, "good_sm2": Sm2Key.generate}[leaf]()
    with pytest.raises(BadSignatureError):
        verify_signature(pki[leaf].cert, alg, MESSAGE, sign_payload(key, alg, MESSAGE))


@pytest.mark.parametrize(
    ("leaf", "alg"),
    [
        ("good_rsa", "ES256"),
        ("good_rsa", "SM2"),
        ("good_ec", "RS256"),
        ("good_ec", "PS256"),
        ("good_ec", "SM2"),
        ("good_sm2", "ES256"),
        ("good_sm2", "RS256"),
    ],
)
def test_algorithm_must_fit_the_key(pki, leaf, alg):
    with pytest.raises(AlgorithmMismatchError):
        verify_signature(pki[leaf].cert, alg, MESSAGE, b"\x01" * 64)


@pytest.mark.parametrize("alg", ["none", "HS256", "rs256", "ES384", "EdDSA", ""])
def test_unknown_algorithms_are_malformed(pki, alg):
    with pytest.raises(MalformedResponseError):
        verify_signature(pki["good_rsa"].cert, alg, MESSAGE, b"x")


def test_pkcs1_and_pss_are_not_interchangeable(pki):
    leaf = pki["good_rsa"]
    with pytest.raises(BadSignatureError):
        verify_signature(leaf.cert, "PS256", MESSAGE, sign_payload(leaf.key, "RS256", MESSAGE))
    with pytest.raises(BadSignatureError):
        verify_signature(leaf.cert, "RS256", MESSAGE, sign_payload(leaf.key, "PS256", MESSAGE))


@pytest.mark.parametrize("salt", [20, 64, padding.PSS.MAX_LENGTH])
def test_pss_salt_length_must_be_32(pki, salt):
    leaf = pki["good_rsa"]
    scheme = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt)
    signature = leaf.key.sign(MESSAGE, scheme, hashes.SHA256())
    with pytest.raises(BadSignatureError):
        verify_signature(leaf.cert, "PS256", MESSAGE, signature)


def test_es256_wants_raw_r_s_not_der(pki):
    leaf = pki["good_ec"]
    der = leaf.key.sign(MESSAGE, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(BadSignatureError):
        verify_signature(leaf.cert, "ES256", MESSAGE, der)


@pytest.mark.parametrize("length", [0, 63, 65, 128])
def test_raw_signatures_must_be_64_bytes(pki, length):
    for leaf, alg in (("good_ec", "ES256"), ("good_sm2", "SM2")):
        with pytest.raises(BadSignatureError):
            verify_signature(pki[leaf].cert, alg, MESSAGE, b"\x01" * length)


@pytest.mark.parametrize(
    "signature",
    [
        bytes(64),
        (0).to_bytes(32, "big") + (1).to_bytes(32, "big"),
        SM2_ORDER.to_bytes(32, "big") + (1).to_bytes(32, "big"),
        b"\xff" * 64,
    ],
    ids=["zero", "r-zero", "r-order", "all-ones"],
)
def test_sm2_out_of_range_values_fail(pki, signature):
    with pytest.raises(BadSignatureError):
        verify_signature(pki["good_sm2"].cert, "SM2", MESSAGE, signature)


def test_sm2_with_another_user_id_fails(pki):
    key: Sm2Key = pki["good_sm2"].key
    r, s = gmalg.SM2(sk=key.secret, uid=b"1234567812345679", pk=key.public).sign(MESSAGE)
    signature = r.rjust(32, b"\0") + s.rjust(32, b"\0")
    with pytest.raises(BadSignatureError):
        verify_signature(pki["good_sm2"].cert, "SM2", MESSAGE, signature)


def test_key_descriptions(pki):
    assert [key_kind(pki[name].cert) for name in ("good_rsa", "good_ec", "good_sm2")] == [
        "RSA",
        "EC-P256",
        "SM2",
    ]
    assert key_description(pki["good_rsa"].cert) == "RSA-2048"


# --- interoperability with OpenSSL --------------------------------------------------------------

openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")


def run_openssl(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, timeout=10, check=False)


@openssl
def test_openssl_sm2_signatures_verify(pki, tmp_path):
    """OpenSSL signs with distid 1234567812345678 and DER (r, s); the agent sends raw r||s."""
    leaf = pki["good_sm2"]
    (tmp_path / "key.der").write_bytes(leaf.key.pkcs8_der())
    (tmp_path / "msg").write_bytes(MESSAGE)
    result = run_openssl(
        "pkeyutl",
        "-sign",
        "-rawin",
        "-digest",
        "sm3",
        "-pkeyopt",
        "distid:1234567812345678",
        "-keyform",
        "DER",
        "-inkey",
        "key.der",
        "-in",
        "msg",
        "-out",
        "sig.der",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    parsed = DSASignature.load((tmp_path / "sig.der").read_bytes())
    raw = parsed["r"].native.to_bytes(32, "big") + parsed["s"].native.to_bytes(32, "big")
    verify_signature(leaf.cert, "SM2", MESSAGE, raw)


@openssl
def test_openssl_accepts_the_test_sm2_chain_and_our_signatures(pki, tmp_path):
    leaf = pki["good_sm2"]
    (tmp_path / "root.pem").write_bytes(pki.sm2_root.pem)
    (tmp_path / "leaf.pem").write_bytes(leaf.cert.public_bytes(serialization.Encoding.PEM))
    verified = run_openssl(
        "verify",
        "-vfyopt",
        "distid:1234567812345678",
        "-CAfile",
        "root.pem",
        "leaf.pem",
        cwd=tmp_path,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    (tmp_path / "msg").write_bytes(MESSAGE)
    (tmp_path / "sig.der").write_bytes(leaf.key.sign_der(MESSAGE))
    checked = run_openssl(
        "pkeyutl",
        "-verify",
        "-rawin",
        "-digest",
        "sm3",
        "-pkeyopt",
        "distid:1234567812345678",
        "-certin",
        "-inkey",
        "leaf.pem",
        "-in",
        "msg",
        "-sigfile",
        "sig.der",
        cwd=tmp_path,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
