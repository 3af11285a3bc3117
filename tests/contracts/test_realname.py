"""Contract of ``RealNameVerifier``: one suite run against the sandbox, Tencent and Aliyun.

The cloud adapters talk to a loopback fake of the vendor API. The fake checks each request with
its own implementation of the published signature algorithm (itself checked against the vendors'
documented examples in ``tests/unit/vendors``) and answers in the vendor's documented shapes,
from the (name, phone) pairs it knows: Tencent ``CheckPhoneAndName`` ``Result`` 0/1/-1, Aliyun
``TwoElementsVerification`` ``Data.IsConsistent`` 1/0/2. A badly signed request gets the
vendor's refusal, not a verdict.

The contract: a known pair is MATCH, another name for a known phone is MISMATCH, and everything
without a verdict (vendor error, HTTP error, timeout, bad JSON, bad signature; at a carrier also
an unknown phone) raises ``RealNameUnavailableError``, never MISMATCH. The sandbox answers every
pair it does not list with MISMATCH and is unavailable only where its file says so. Also here:
the sandbox file format.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
import uuid
from abc import abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest

from idp.backends import load_backend
from idp.config import ConfigError, Settings
from idp.realname import BACKENDS, RealNameUnavailableError, Verdict
from idp.realname.aliyun import AliyunRealNameVerifier
from idp.realname.sandbox import SandboxRealNameVerifier
from idp.realname.tencent import TencentRealNameVerifier
from tests.vendor_signing import (
    AUTHORIZATION,
    LoopbackVendor,
    aliyun_expected_signature,
    tencent_error,
    tencent_expected_signature,
)

KEY_ID = "AKID-realname-test"
SECRET = "realname-secret-Ab+/="
AUTH_CODE = "QASDW-test-auth-code"
PHONE = "13800138000"
NAME = "张三"
MINORITY_PHONE = "13900139000"
MINORITY_NAME = "阿依古丽·买买提"  # middle dot: percent-encoding and JSON of non-ASCII punctuation
UNKNOWN_PHONE = "13700137000"
OTHER_NAME = "李四"
KNOWN = {PHONE: NAME, MINORITY_PHONE: MINORITY_NAME}
GENERIC_MESSAGE = "校验服务暂不可用，请稍后再试"


# --- loopback fakes of the vendor APIs --------------------------------------------------------


UNSET = object()  # the fake answers from KNOWN
ABSENT = "<absent>"  # the fake leaves the result field out


def without_absent(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value != ABSENT}


class FakeVendor(LoopbackVendor):
    """A vendor API on 127.0.0.1: verifies each request, records accepted ones, answers like the
    vendor from ``KNOWN``. ``mode`` selects the answer after a valid signature: ok, vendor_error,
    http_500, bad_json, redirect or slow (waits until the test ends). ``forced`` replaces the
    vendor's result code (Tencent ``Result``, Aliyun ``IsConsistent``; ``ABSENT`` drops it)."""

    name: str
    forced: Any = UNSET

    def respond(self, headers: Any, body: bytes) -> tuple[int, dict[str, str], bytes]:
        return self.answer(headers, body)

    def answer(self, headers: Any, body: bytes) -> tuple[int, dict[str, str], bytes]:
        refusal = self.verify(headers, body)
        if refusal is not None:
            return refusal[0], {}, json.dumps(refusal[1], ensure_ascii=False).encode()
        if self.mode == "slow":
            self.released.wait(10)
        if self.mode == "http_500":
            return 500, {}, b"<html><body>500 Internal Server Error</body></html>"
        if self.mode == "bad_json":
            return 200, {}, b'{"Response": {"Result": "0", '
        if self.mode == "redirect":
            return 302, {"Location": "http://127.0.0.1:9/elsewhere"}, b"{}"
        name, phone = self.inputs(self.received[-1])
        result = (
            self.vendor_error(phone) if self.mode == "vendor_error" else self.lookup(name, phone)
        )
        return 200, {}, json.dumps(result, ensure_ascii=False).encode()

    @abstractmethod
    def verify(self, headers: Any, body: bytes) -> tuple[int, dict[str, Any]] | None:
        """The vendor's refusal (status, body) of a badly signed request, else None."""

    @abstractmethod
    def inputs(self, request: dict[str, Any]) -> tuple[str, str]:
        """(name, phone) of an accepted request."""

    @abstractmethod
    def lookup(self, name: str, phone: str) -> dict[str, Any]:
        """The vendor's answer to a check of ``name`` against the holder of ``phone``."""

    @abstractmethod
    def vendor_error(self, phone: str) -> dict[str, Any]:
        """The vendor's refusal to check (rate limit); the message echoes the number."""


class FakeTencent(FakeVendor):
    """FaceID 2018-03-01 ``CheckPhoneAndName``: JSON body, TC3-HMAC-SHA256, always HTTP 200."""

    name = "tencent"

    def verify(self, headers: Any, body: bytes) -> tuple[int, dict[str, Any]] | None:
        match = AUTHORIZATION.fullmatch(headers.get("Authorization", ""))
        if match is None:
            return 200, tencent_error(
                "AuthFailure.InvalidAuthorization", "Authorization is invalid."
            )
        if match["id"] != KEY_ID:
            return 200, tencent_error("AuthFailure.SecretIdNotFound", "The SecretId is not found.")
        timestamp = headers.get("X-TC-Timestamp", "0")
        if abs(time.time() - int(timestamp)) > 300:
            return 200, tencent_error("AuthFailure.SignatureExpire", "Signature expired.")
        signed = match["signed"].split(";")
        if not {"content-type", "host"} <= set(signed) or match["service"] != "faceid":
            return 200, tencent_error("AuthFailure.InvalidAuthorization", "Bad credential scope.")
        expected = tencent_expected_signature(
            secret_key=SECRET,
            headers={name: headers.get(name, "") for name in signed},
            payload=body,
            timestamp=timestamp,
            service="faceid",
        )
        if not hmac.compare_digest(match["signature"], expected):
            return 200, tencent_error(
                "AuthFailure.SignatureFailure",
                "The provided credentials could not be validated. Please check your signature is correct.",
            )
        action = (headers.get("X-TC-Action"), headers.get("X-TC-Version"))
        if action != ("CheckPhoneAndName", "2018-03-01"):
            return 200, tencent_error("InvalidAction", f"Action {action} not found.")
        params = json.loads(body)
        if not (isinstance(params.get("Mobile"), str) and isinstance(params.get("Name"), str)):
            return 200, tencent_error("InvalidParameter", "Mobile and Name are required.")
        self.received.append({"headers": dict(headers.items()), "body": params})
        return None

    def inputs(self, request: dict[str, Any]) -> tuple[str, str]:
        return request["body"]["Name"], request["body"]["Mobile"]

    def lookup(self, name: str, phone: str) -> dict[str, Any]:
        if phone not in KNOWN:
            result, description = "-1", "查无记录"
        elif KNOWN[phone] == name:
            result, description = "0", "验证结果一致"
        else:
            result, description = "1", "验证结果不一致"
        if self.forced is not UNSET:
            result, description = self.forced, "forced by the test"
        answer = {"Result": result, "Description": description, "RequestId": str(uuid.uuid4())}
        return {"Response": without_absent(answer)}

    def vendor_error(self, phone: str) -> dict[str, Any]:
        return tencent_error("RequestLimitExceeded", f"请求的次数超过了频率限制（{phone}）")


def aliyun_error(code: str, message: str) -> dict[str, Any]:
    return {
        "Code": code,
        "Message": message,
        "RequestId": str(uuid.uuid4()),
        "HostId": "dytnsapi.aliyuncs.com",
    }


class FakeAliyun(FakeVendor):
    """Dytnsapi 2020-02-17 ``TwoElementsVerification``: form-encoded RPC request, signature 1.0,
    errors as ``{"Code": ..., "Message": ...}``."""

    name = "aliyun"

    def __init__(self) -> None:
        super().__init__()
        self.nonces: set[str] = set()

    def verify(self, headers: Any, body: bytes) -> tuple[int, dict[str, Any]] | None:
        params = dict(parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=True))
        signature = params.pop("Signature", "")
        if params.get("AccessKeyId") != KEY_ID:
            return 404, aliyun_error(
                "InvalidAccessKeyId.NotFound", "Specified access key is not found."
            )
        if (params.get("SignatureMethod"), params.get("SignatureVersion")) != ("HMAC-SHA1", "1.0"):
            return 400, aliyun_error(
                "InvalidSignatureMethod", "Specified signature method is not supported."
            )
        expected = aliyun_expected_signature(params, secret=SECRET, method="POST")
        if not hmac.compare_digest(signature, expected):
            return 400, aliyun_error(
                "SignatureDoesNotMatch", "Specified signature is not matched with our calculation."
            )
        if params.get("SignatureNonce", "") in self.nonces or not params.get("SignatureNonce"):
            return 400, aliyun_error(
                "SignatureNonceUsed", "Specified signature nonce was used already."
            )
        stamp = datetime.strptime(params.get("Timestamp", ""), "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=UTC
        )
        if abs(datetime.now(UTC) - stamp) > timedelta(minutes=15):
            return 400, aliyun_error(
                "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."
            )
        if (params.get("Action"), params.get("Version")) != (
            "TwoElementsVerification",
            "2020-02-17",
        ):
            return 400, aliyun_error("InvalidVersion", "Specified parameter Version is not valid.")
        if params.get("AuthCode") != AUTH_CODE:
            # The fake's own code: the public reference does not list the real one.
            return 403, aliyun_error("Forbidden.AuthCode", "The authorization code is not valid.")
        if params.get("Mask") != "NORMAL" or not params.get("InputNumber"):
            return 400, aliyun_error("MissingParameter", "Mask, InputNumber and Name are required.")
        self.nonces.add(params["SignatureNonce"])
        self.received.append(params)
        return None

    def inputs(self, request: dict[str, Any]) -> tuple[str, str]:
        return request["Name"], request["InputNumber"]

    def lookup(self, name: str, phone: str) -> dict[str, Any]:
        if phone not in KNOWN:
            consistent: Any = 2
        else:
            consistent = 1 if KNOWN[phone] == name else 0
        if self.forced is not UNSET:
            consistent = self.forced
        data = {"IsConsistent": consistent, "BasicCarrier": "China Mobile"}
        return {
            "Code": "OK",
            "Message": "OK",
            "RequestId": str(uuid.uuid4()),
            "Data": without_absent(data),
        }

    def vendor_error(self, phone: str) -> dict[str, Any]:
        return aliyun_error("RequestFrequencyLimit", f"号码 {phone} 查询过于频繁，请稍后再试")


FAKES: dict[str, type[FakeVendor]] = {"tencent": FakeTencent, "aliyun": FakeAliyun}
VENDOR_CODES = {
    "signature": {"tencent": "AuthFailure.SignatureFailure", "aliyun": "SignatureDoesNotMatch"},
    "key_id": {"tencent": "AuthFailure.SecretIdNotFound", "aliyun": "InvalidAccessKeyId.NotFound"},
    "vendor_error": {"tencent": "RequestLimitExceeded", "aliyun": "RequestFrequencyLimit"},
    "no_record": {"tencent": "Result=-1", "aliyun": "IsConsistent=2"},
}


# --- settings and harness ---------------------------------------------------------------------


def vendor_settings(
    backend: str, tmp_path: Path, endpoint: str, *, auth_code: str = AUTH_CODE, **overrides: Any
) -> Any:
    values: dict[str, Any] = {
        "instance_dir": tmp_path,
        "realname_backend": backend,
        "realname_endpoint": endpoint,
        "realname_access_key_id": KEY_ID,
        "realname_access_key_secret": SECRET,
        "realname_timeout": 5.0,
        "realname_auth_code": auth_code,
        **overrides,
    }
    return Settings.from_env({}, **values)


def vendor_verifier(fake: FakeVendor, tmp_path: Path, **overrides: Any) -> Any:
    settings = vendor_settings(fake.name, tmp_path, fake.url, **overrides)
    return load_backend(BACKENDS, fake.name).from_settings(settings)


def write_pairs(path: Path, pairs: dict[str, str]) -> None:
    lines = ["# 沙箱实名数据：姓名，手机号", ""] + [
        f"{name},{phone}" for phone, name in pairs.items()
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@dataclass
class Harness:
    name: str
    verifier: Any
    vendor: FakeVendor | None


@pytest.fixture(params=["sandbox", "tencent", "aliyun"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    if request.param == "sandbox":
        path = tmp_path / "pairs.csv"
        write_pairs(path, KNOWN)
        settings = Settings.from_env({}, instance_dir=tmp_path, realname_sandbox_file=path)
        yield Harness("sandbox", load_backend(BACKENDS, "sandbox").from_settings(settings), None)
        return
    fake = FAKES[request.param]()
    yield Harness(request.param, vendor_verifier(fake, tmp_path), fake)
    fake.close()


@pytest.fixture(params=["tencent", "aliyun"])
def vendor(request: pytest.FixtureRequest) -> Iterator[FakeVendor]:
    fake = FAKES[request.param]()
    yield fake
    fake.close()


def assert_unavailable(error: pytest.ExceptionInfo[RealNameUnavailableError], detail: str) -> None:
    assert detail in error.value.detail
    assert str(error.value) == GENERIC_MESSAGE
    assert (error.value.status, error.value.code) == (503, "realname_unavailable")


# --- the contract, for every implementation ---------------------------------------------------


def test_known_pair_is_a_match(harness: Harness):
    assert harness.verifier.verify(name=NAME, phone=PHONE) is Verdict.MATCH


def test_non_ascii_punctuation_in_a_name_is_carried_exactly(harness: Harness):
    assert harness.verifier.verify(name=MINORITY_NAME, phone=MINORITY_PHONE) is Verdict.MATCH


def test_another_name_for_a_known_phone_is_a_mismatch(harness: Harness):
    assert harness.verifier.verify(name=OTHER_NAME, phone=PHONE) is Verdict.MISMATCH


def test_unknown_phone_at_a_carrier_is_unavailable_never_a_mismatch(vendor: FakeVendor, tmp_path):
    """(The sandbox answers pairs it does not list with a mismatch: see its tests below.)"""
    with pytest.raises(RealNameUnavailableError) as error:
        vendor_verifier(vendor, tmp_path).verify(name=NAME, phone=UNKNOWN_PHONE)
    assert_unavailable(error, "no record")


def test_arguments_are_keyword_only(harness: Harness):
    with pytest.raises(TypeError):
        harness.verifier.verify(NAME, PHONE)


def test_name_and_phone_never_appear_in_clear_in_logs_or_detail(
    harness: Harness, caplog: pytest.LogCaptureFixture
):
    with caplog.at_level(logging.DEBUG):
        harness.verifier.verify(name=NAME, phone=PHONE)
        harness.verifier.verify(name=OTHER_NAME, phone=PHONE)
        details = []
        if harness.vendor is not None:
            with pytest.raises(RealNameUnavailableError) as unknown:
                harness.verifier.verify(name=NAME, phone=UNKNOWN_PHONE)
            details.append(unknown.value.detail)
            harness.vendor.mode = "vendor_error"  # the vendor's message echoes the number
            with pytest.raises(RealNameUnavailableError) as refused:
                harness.verifier.verify(name=NAME, phone=PHONE)
            details.append(refused.value.detail)
            assert "138****8000" in refused.value.detail
    text = "\n".join([r.getMessage() for r in caplog.records] + details)
    for clear in (PHONE, UNKNOWN_PHONE, NAME, OTHER_NAME):
        assert clear not in text


def test_registry_names_the_classes():
    assert load_backend(BACKENDS, "sandbox") is SandboxRealNameVerifier
    assert load_backend(BACKENDS, "tencent") is TencentRealNameVerifier
    assert load_backend(BACKENDS, "aliyun") is AliyunRealNameVerifier
    for name in BACKENDS:
        assert callable(load_backend(BACKENDS, name).from_settings)


# --- cloud adapters: every way a check has no verdict -----------------------------------------


def test_vendor_error_is_unavailable_with_the_code(vendor: FakeVendor, tmp_path: Path):
    vendor.mode = "vendor_error"
    with pytest.raises(RealNameUnavailableError) as error:
        vendor_verifier(vendor, tmp_path).verify(name=NAME, phone=PHONE)
    assert_unavailable(error, VENDOR_CODES["vendor_error"][vendor.name])


def test_no_record_detail_names_the_vendor_code(vendor: FakeVendor, tmp_path: Path):
    with pytest.raises(RealNameUnavailableError) as error:
        vendor_verifier(vendor, tmp_path).verify(name=NAME, phone=UNKNOWN_PHONE)
    assert_unavailable(error, VENDOR_CODES["no_record"][vendor.name])


def test_http_500_is_unavailable(vendor: FakeVendor, tmp_path: Path):
    vendor.mode = "http_500"
    with pytest.raises(RealNameUnavailableError) as error:
        vendor_verifier(vendor, tmp_path).verify(name=NAME, phone=PHONE)
    assert_unavailable(error, "HTTP 500")


def test_timeout_is_unavailable(vendor: FakeVendor, tmp_path: Path):
    vendor.mode = "slow"
    verifier = vendor_verifier(vendor, tmp_path, realname_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(RealNameUnavailableError) as error:
        verifier.verify(name=NAME, phone=PHONE)
    assert time.monotonic() - started < 3
    assert_unavailable(error, "Timeout")


def test_malformed_json_is_unavailable(vendor: FakeVendor, tmp_path: Path):
    vendor.mode = "bad_json"
    with pytest.raises(RealNameUnavailableError) as error:
        vendor_verifier(vendor, tmp_path).verify(name=NAME, phone=PHONE)
    assert_unavailable(error, "not JSON")


def test_redirect_is_not_followed(vendor: FakeVendor, tmp_path: Path):
    vendor.mode = "redirect"
    with pytest.raises(RealNameUnavailableError) as error:
        vendor_verifier(vendor, tmp_path).verify(name=NAME, phone=PHONE)
    assert_unavailable(error, "HTTP 302")


def test_wrong_secret_gets_the_vendor_refusal(vendor: FakeVendor, tmp_path: Path):
    verifier = vendor_verifier(vendor, tmp_path, realname_access_key_secret="not-the-secret")
    with pytest.raises(RealNameUnavailableError) as error:
        verifier.verify(name=NAME, phone=PHONE)
    assert_unavailable(error, VENDOR_CODES["signature"][vendor.name])
    assert vendor.received == []


def test_unknown_key_id_gets_the_vendor_refusal(vendor: FakeVendor, tmp_path: Path):
    verifier = vendor_verifier(vendor, tmp_path, realname_access_key_id="AKID-unknown")
    with pytest.raises(RealNameUnavailableError) as error:
        verifier.verify(name=NAME, phone=PHONE)
    assert_unavailable(error, VENDOR_CODES["key_id"][vendor.name])


def test_unreachable_vendor_is_unavailable(tmp_path: Path):
    fake = FakeTencent()
    fake.close()  # nothing listens on the port any more
    with pytest.raises(RealNameUnavailableError) as error:
        vendor_verifier(fake, tmp_path, realname_timeout=0.5).verify(name=NAME, phone=PHONE)
    assert_unavailable(error, "unreachable")


@pytest.mark.parametrize(
    "result", ["-1", "-2", "-3", "-4", "-5", "-6", "-13", "7", 0, None, ABSENT]
)
def test_tencent_codes_without_a_verdict_are_unavailable(result: str, tmp_path: Path):
    fake = FakeTencent()
    fake.forced = result
    try:
        with pytest.raises(RealNameUnavailableError) as error:
            vendor_verifier(fake, tmp_path).verify(name=NAME, phone=PHONE)
    finally:
        fake.close()
    assert_unavailable(error, "tencent Result=")


@pytest.mark.parametrize("consistent", [2, 3, -1, None, ABSENT, True, False, 1.0, "yes"])
def test_aliyun_values_without_a_verdict_are_unavailable(consistent: Any, tmp_path: Path):
    fake = FakeAliyun()
    fake.forced = consistent
    try:
        with pytest.raises(RealNameUnavailableError) as error:
            vendor_verifier(fake, tmp_path).verify(name=NAME, phone=PHONE)
    finally:
        fake.close()
    assert_unavailable(error, "IsConsistent")


# --- cloud adapters: wire format --------------------------------------------------------------


def test_tencent_request_is_check_phone_and_name(tmp_path: Path):
    fake = FakeTencent()
    try:
        vendor_verifier(fake, tmp_path).verify(name=MINORITY_NAME, phone=MINORITY_PHONE)
    finally:
        fake.close()
    [request] = fake.received
    assert request["body"] == {"Mobile": MINORITY_PHONE, "Name": MINORITY_NAME}
    headers = request["headers"]
    assert (headers["X-TC-Action"], headers["X-TC-Version"]) == ("CheckPhoneAndName", "2018-03-01")
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert "/faceid/tc3_request" in headers["Authorization"]


def test_aliyun_request_is_two_elements_verification(tmp_path: Path):
    fake = FakeAliyun()
    try:
        verifier = vendor_verifier(fake, tmp_path)
        verifier.verify(name=MINORITY_NAME, phone=MINORITY_PHONE)
        verifier.verify(name=NAME, phone=PHONE)
    finally:
        fake.close()
    first, second = fake.received
    wanted = ("Action", "Version", "Format", "AuthCode", "InputNumber", "Mask", "Name")
    assert {key: first[key] for key in wanted} == {
        "Action": "TwoElementsVerification",
        "Version": "2020-02-17",
        "Format": "JSON",
        "AuthCode": AUTH_CODE,
        "InputNumber": MINORITY_PHONE,
        "Mask": "NORMAL",
        "Name": MINORITY_NAME,
    }
    assert first["SignatureNonce"] != second["SignatureNonce"]


def test_one_session_serves_every_check(vendor: FakeVendor, tmp_path: Path):
    verifier = vendor_verifier(vendor, tmp_path)
    session = verifier.session
    verifier.verify(name=NAME, phone=PHONE)
    verifier.verify(name=OTHER_NAME, phone=PHONE)
    assert verifier.session is session
    assert len(vendor.received) == 2


# --- cloud adapters: settings -----------------------------------------------------------------


@pytest.mark.parametrize("backend", ["tencent", "aliyun"])
@pytest.mark.parametrize("missing", ["realname_access_key_id", "realname_access_key_secret"])
def test_missing_credentials_refuse_to_start(backend: str, missing: str, tmp_path: Path):
    settings = vendor_settings(backend, tmp_path, "", **{missing: ""})
    with pytest.raises(ConfigError, match=f"IDP_{missing.upper()}"):
        load_backend(BACKENDS, backend).from_settings(settings)


def test_aliyun_needs_an_auth_code(tmp_path: Path):
    settings = vendor_settings("aliyun", tmp_path, "", auth_code="")
    with pytest.raises(ConfigError, match="IDP_REALNAME_AUTH_CODE"):
        AliyunRealNameVerifier.from_settings(settings)


@pytest.mark.parametrize("backend", ["tencent", "aliyun"])
def test_plain_http_endpoint_is_refused_outside_development(backend: str, tmp_path: Path):
    settings = vendor_settings(
        backend,
        tmp_path,
        "http://realname.example.internal/",
        dev_mode=False,
        secret_key="s",
        data_key="d",
        sms_backend="tencent",
        issuer="https://idp.example",
    )
    with pytest.raises(ConfigError, match="IDP_REALNAME_ENDPOINT"):
        load_backend(BACKENDS, backend).from_settings(settings)


def test_defaults_are_the_vendors_https_apis_and_the_configured_timeout(tmp_path: Path):
    tencent = TencentRealNameVerifier.from_settings(
        vendor_settings("tencent", tmp_path, "", realname_timeout=2.5)
    )
    aliyun = AliyunRealNameVerifier.from_settings(
        vendor_settings("aliyun", tmp_path, "", realname_timeout=2.5)
    )
    assert (tencent.endpoint, tencent.host) == (
        "https://faceid.tencentcloudapi.com/",
        "faceid.tencentcloudapi.com",
    )
    assert aliyun.endpoint == "https://dytnsapi.aliyuncs.com/"
    assert tencent.timeout == aliyun.timeout == 2.5


# --- the sandbox file -------------------------------------------------------------------------


def sandbox(tmp_path: Path, content: str | bytes) -> SandboxRealNameVerifier:
    path = tmp_path / "realname-sandbox.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return SandboxRealNameVerifier(path)


def test_sandbox_skips_comments_and_blank_lines_and_trims_spaces(tmp_path: Path):
    verifier = sandbox(
        tmp_path,
        "# 姓名,手机号\n\n   \n  张三,13800138000  \n#李四,13900139000\n王五,13700137000\n",  # punctuation: data
    )
    assert verifier.verify(name="张三", phone="13800138000") is Verdict.MATCH
    assert verifier.verify(name=" 张三 ", phone="13800138000") is Verdict.MATCH
    assert verifier.verify(name="王五", phone="13700137000") is Verdict.MATCH
    assert verifier.verify(name="李四", phone="13900139000") is Verdict.MISMATCH  # commented out
    assert verifier.verify(name="姓名", phone="手机号") is Verdict.MISMATCH


def test_sandbox_reads_windows_line_endings(tmp_path: Path):
    records = "张三,13800138000\r\n李四,13900139000\r\n"  # punctuation: data
    verifier = sandbox(tmp_path, records.encode())
    assert verifier.verify(name="李四", phone="13900139000") is Verdict.MATCH
    assert verifier.verify(name="张三", phone="13900139000") is Verdict.MISMATCH


def test_sandbox_ignores_lines_without_a_pair(tmp_path: Path):
    records = "张三\n,13900139000\n李四,\n王五,13700137000\n"  # punctuation: data
    verifier = sandbox(tmp_path, records)
    assert verifier.verify(name="张三", phone="13900139000") is Verdict.MISMATCH
    assert verifier.verify(name="王五", phone="13700137000") is Verdict.MATCH


def test_sandbox_without_a_file_knows_nobody(tmp_path: Path):
    verifier = SandboxRealNameVerifier(tmp_path / "absent.csv")
    assert verifier.verify(name=NAME, phone=PHONE) is Verdict.MISMATCH


def test_sandbox_answers_an_unlisted_pair_with_a_mismatch(tmp_path: Path):
    verifier = sandbox(tmp_path, f"{NAME},{PHONE}\n")
    assert verifier.verify(name=NAME, phone=UNKNOWN_PHONE) is Verdict.MISMATCH
    assert verifier.verify(name=OTHER_NAME, phone=PHONE) is Verdict.MISMATCH


def test_sandbox_simulates_an_outage_only_when_told(tmp_path: Path):
    verifier = sandbox(tmp_path, f"{NAME},{PHONE}\n!unavailable,{UNKNOWN_PHONE}\n")
    assert verifier.verify(name=NAME, phone=PHONE) is Verdict.MATCH
    with pytest.raises(RealNameUnavailableError) as error:
        verifier.verify(name=NAME, phone=UNKNOWN_PHONE)
    assert_unavailable(error, "simulated outage")

    everything = sandbox(tmp_path, f"{NAME},{PHONE}\n!unavailable\n")
    with pytest.raises(RealNameUnavailableError):
        everything.verify(name=NAME, phone=PHONE)


def test_sandbox_add_is_read_back_at_once(tmp_path: Path):
    verifier = SandboxRealNameVerifier(tmp_path / "nested" / "pairs.csv")
    verifier.add(name=NAME, phone=PHONE)
    assert verifier.verify(name=NAME, phone=PHONE) is Verdict.MATCH


def test_sandbox_says_it_is_development_only(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    with caplog.at_level("WARNING", logger="idp.realname.sandbox"):
        SandboxRealNameVerifier(tmp_path / "pairs.csv")
    assert [r.getMessage() for r in caplog.records if "development only" in r.getMessage()]


def test_sandbox_skips_indented_comments(tmp_path: Path):
    verifier = sandbox(tmp_path, "  # 示例,13800138000\n")  # punctuation: data
    assert verifier.verify(name="# 示例", phone="13800138000") is Verdict.MISMATCH


def test_sandbox_reads_a_file_with_a_byte_order_mark(tmp_path: Path):
    verifier = sandbox(tmp_path, "\ufeff张三,13800138000\n".encode())
    assert verifier.verify(name="张三", phone="13800138000") is Verdict.MATCH
