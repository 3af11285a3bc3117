"""Contract of ``SmsGateway``: one suite run against the outbox, Aliyun and Tencent.

The cloud gateways talk to a loopback fake of the vendor API. The fake checks each request the
way the vendor does, with its own implementation of the published signature algorithm (itself
checked against the vendors' documented examples in ``tests/unit/vendors``), and answers in the
vendor's shapes: a wrong signature gets the vendor's refusal, not a pass.

Also here: ``render_message``, the outbox line format and ``/dev/sms`` (on a minimal app with
``base.html``, since the full ``create_app`` needs every other domain).
"""

from __future__ import annotations

import hmac
import json
import time
import uuid
from abc import abstractmethod
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

import pytest
from flask import Flask
from jinja2 import UndefinedError

from idp.backends import load_backend
from idp.config import ConfigError, Settings
from idp.sms import BACKENDS, SmsError, SmsMessage
from idp.sms.aliyun import AliyunSmsGateway
from idp.sms.messages import render_message
from idp.sms.outbox import OutboxSmsGateway
from idp.sms.tencent import TencentSmsGateway
from tests.vendor_signing import (
    AUTHORIZATION,
    LoopbackVendor,
    aliyun_expected_signature,
    tencent_error,
    tencent_expected_signature,
)

KEY_ID = "LTAI-test-key-id"
SECRET = "test-secret-Ab+/="
SIGN_NAME = "统一认证登录平台"
TENCENT_APP_ID = "1400000001"
TENCENT_REGION = "ap-guangzhou"
PHONE = "13800138000"
GENERIC_MESSAGE = "短信发送失败，请稍后再试"
IDP_DIR = Path(__file__).resolve().parents[2] / "idp"

VENDOR_SETTINGS: dict[str, dict[str, str]] = {
    "aliyun": {"sms_template_login": "SMS_465000001", "sms_template_password": "SMS_465000002"},
    "tencent": {
        "sms_template_login": "2100001",
        "sms_template_password": "2100002",
        "sms_app_id": TENCENT_APP_ID,
        "sms_region": TENCENT_REGION,
    },
}


# --- loopback fakes of the vendor APIs --------------------------------------------------------


class FakeVendor(LoopbackVendor):
    """A vendor API on 127.0.0.1: verifies each request, records accepted ones, answers like the
    vendor. ``mode`` selects the answer after a valid signature: ok, vendor_error, http_500,
    bad_json or slow (waits until the test ends)."""

    def respond(self, headers: Any, body: bytes) -> tuple[int, dict[str, str], bytes]:
        status, payload = self.answer(headers, body)
        return status, {}, payload

    def answer(self, headers: Any, body: bytes) -> tuple[int, bytes]:
        refusal = self.verify(headers, body)
        if refusal is not None:
            return refusal[0], json.dumps(refusal[1]).encode()
        if self.mode == "slow":
            self.released.wait(10)
        if self.mode == "http_500":
            return 500, b"<html><body>500 Internal Server Error</body></html>"
        if self.mode == "bad_json":
            return 200, b'{"Code": "OK", '
        result = self.vendor_error() if self.mode == "vendor_error" else self.success()
        return 200, json.dumps(result, ensure_ascii=False).encode()

    @abstractmethod
    def verify(self, headers: Any, body: bytes) -> tuple[int, dict[str, Any]] | None:
        """The vendor's refusal (status, body) of a badly signed request, else None."""

    @abstractmethod
    def success(self) -> dict[str, Any]:
        """The vendor's answer to a delivered message."""

    @abstractmethod
    def vendor_error(self) -> dict[str, Any]:
        """The vendor's answer when it refuses to deliver."""


class FakeAliyun(FakeVendor):
    """Dysms: form-encoded RPC request, signature 1.0, errors as ``{"Code": ..., "Message": ...}``."""

    secret = SECRET

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
        expected = aliyun_expected_signature(params, secret=self.secret, method="POST")
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
        if (params.get("Action"), params.get("Version")) != ("SendSms", "2017-05-25"):
            return 400, aliyun_error("InvalidVersion", "Specified parameter Version is not valid.")
        self.nonces.add(params["SignatureNonce"])
        self.received.append(params)
        return None

    def success(self) -> dict[str, Any]:
        return {
            "Code": "OK",
            "Message": "OK",
            "BizId": "900619746936498440^0",
            "RequestId": str(uuid.uuid4()),
        }

    def vendor_error(self) -> dict[str, Any]:
        return aliyun_error("isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1")


def aliyun_error(code: str, message: str) -> dict[str, Any]:
    return {
        "Code": code,
        "Message": message,
        "RequestId": str(uuid.uuid4()),
        "HostId": "dysmsapi.aliyuncs.com",
    }


class FakeTencent(FakeVendor):
    """SMS 2021-01-11: JSON body, TC3-HMAC-SHA256, every answer HTTP 200 with ``Response``."""

    secret = SECRET

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
        if not {"content-type", "host"} <= set(signed):
            return 200, tencent_error(
                "AuthFailure.InvalidAuthorization", "content-type and host must be signed."
            )
        date = datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%d")
        expected = tencent_expected_signature(
            secret_key=self.secret,
            headers={name: headers.get(name, "") for name in signed},
            payload=body,
            timestamp=timestamp,
            date=date,
            service="sms",
        )
        if not hmac.compare_digest(match["signature"], expected):
            return 200, tencent_error(
                "AuthFailure.SignatureFailure",
                "The provided credentials could not be validated. Please check your signature is correct.",
            )
        self.received.append({"headers": dict(headers.items()), "body": json.loads(body)})
        return None

    def success(self) -> dict[str, Any]:
        phone = self.received[-1]["body"]["PhoneNumberSet"][0]
        status = {
            "SerialNo": "2645:1234567890",
            "PhoneNumber": phone,
            "Fee": 1,
            "SessionContext": "",
            "Code": "Ok",
            "Message": "send success",
            "IsoCode": "CN",
        }
        return {"Response": {"SendStatusSet": [status], "RequestId": str(uuid.uuid4())}}

    def vendor_error(self) -> dict[str, Any]:
        phone = self.received[-1]["body"]["PhoneNumberSet"][0]
        status = {
            "SerialNo": "",
            "PhoneNumber": phone,
            "Fee": 0,
            "SessionContext": "",
            "Code": "LimitExceeded.PhoneNumberDailyLimit",
            "Message": "the number of sms messages sent from a single mobile number every day exceeds the upper limit",
            "IsoCode": "CN",
        }
        return {"Response": {"SendStatusSet": [status], "RequestId": str(uuid.uuid4())}}


FAKES: dict[str, type[FakeVendor]] = {"aliyun": FakeAliyun, "tencent": FakeTencent}
VENDOR_CODES = {
    "signature": {"aliyun": "SignatureDoesNotMatch", "tencent": "AuthFailure.SignatureFailure"},
    "vendor_error": {
        "aliyun": "isv.BUSINESS_LIMIT_CONTROL",
        "tencent": "LimitExceeded.PhoneNumberDailyLimit",
    },
}


def vendor_settings(name: str, tmp_path: Path, endpoint: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "instance_dir": tmp_path,
        "sms_backend": name,
        "sms_endpoint": endpoint,
        "sms_access_key_id": KEY_ID,
        "sms_access_key_secret": SECRET,
        "sms_sign_name": SIGN_NAME,
        **VENDOR_SETTINGS[name],
    }
    values.update(overrides)
    return Settings.from_env({}, **values)


@pytest.fixture(params=["aliyun", "tencent"])
def vendor(request: pytest.FixtureRequest) -> Iterator[FakeVendor]:
    fake = FAKES[request.param]()
    yield fake
    fake.close()


def vendor_name(fake: FakeVendor) -> str:
    return "aliyun" if isinstance(fake, FakeAliyun) else "tencent"


def vendor_gateway(
    fake: FakeVendor, tmp_path: Path, *, timeout: float = 5.0, **overrides: Any
) -> Any:
    name = vendor_name(fake)
    settings = vendor_settings(name, tmp_path, fake.url, **overrides)
    return load_backend(BACKENDS, name).from_settings(settings, timeout=timeout)


# --- the contract, for every implementation ---------------------------------------------------


class Delivery(NamedTuple):
    phone: str  # national number
    values: list[str]  # template values the phone receives, in order


@dataclass
class Harness:
    gateway: Any
    deliveries: Callable[[], list[Delivery]]


def outbox_harness(tmp_path: Path) -> Harness:
    settings = Settings.from_env({}, instance_dir=tmp_path)
    gateway = load_backend(BACKENDS, "outbox").from_settings(settings)
    return Harness(
        gateway, lambda: [Delivery(m["phone"], [m["code"]]) for m in reversed(gateway.messages())]
    )


def aliyun_deliveries(fake: FakeVendor) -> list[Delivery]:
    return [
        Delivery(p["PhoneNumbers"], list(json.loads(p["TemplateParam"]).values()))
        for p in fake.received
    ]


def tencent_deliveries(fake: FakeVendor) -> list[Delivery]:
    return [
        Delivery(r["body"]["PhoneNumberSet"][0].removeprefix("+86"), r["body"]["TemplateParamSet"])
        for r in fake.received
    ]


@pytest.fixture(params=["outbox", "aliyun", "tencent"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    if request.param == "outbox":
        yield outbox_harness(tmp_path)
        return
    fake = FAKES[request.param]()
    read = aliyun_deliveries if request.param == "aliyun" else tencent_deliveries
    yield Harness(vendor_gateway(fake, tmp_path), lambda: read(fake))
    fake.close()


def test_login_code_is_delivered(harness: Harness):
    assert harness.gateway.send(render_message(phone=PHONE, purpose="login", code="123456")) is None
    assert harness.deliveries() == [Delivery(PHONE, ["123456"])]


def test_initial_password_is_delivered(harness: Harness):
    harness.gateway.send(
        render_message(phone=PHONE, purpose="initial_password", password="Xy7#pQ9k")
    )
    assert harness.deliveries() == [Delivery(PHONE, ["Xy7#pQ9k"])]


def test_each_send_is_one_delivery_in_order(harness: Harness):
    harness.gateway.send(render_message(phone=PHONE, purpose="login", code="111111"))
    harness.gateway.send(render_message(phone="13900139000", purpose="login", code="222222"))
    assert harness.deliveries() == [
        Delivery(PHONE, ["111111"]),
        Delivery("13900139000", ["222222"]),
    ]


# --- cloud gateways: wire format and every way a send fails -----------------------------------


def login_message() -> SmsMessage:
    return render_message(phone=PHONE, purpose="login", code="123456")


def test_aliyun_request_carries_the_send_sms_parameters(tmp_path: Path):
    fake = FakeAliyun()
    try:
        vendor_gateway(fake, tmp_path).send(login_message())
    finally:
        fake.close()
    [params] = fake.received
    assert {k: params[k] for k in ("Action", "Version", "Format", "RegionId", "PhoneNumbers")} == {
        "Action": "SendSms",
        "Version": "2017-05-25",
        "Format": "JSON",
        "RegionId": "cn-hangzhou",
        "PhoneNumbers": PHONE,
    }
    assert params["SignName"] == SIGN_NAME
    assert params["TemplateCode"] == "SMS_465000001"
    assert params["TemplateParam"] == '{"code":"123456"}'


def test_tencent_request_carries_the_send_sms_parameters(tmp_path: Path):
    fake = FakeTencent()
    try:
        vendor_gateway(fake, tmp_path).send(
            render_message(phone=PHONE, purpose="initial_password", password="Xy7#pQ9k")
        )
    finally:
        fake.close()
    [request] = fake.received
    assert request["body"] == {
        "PhoneNumberSet": ["+86" + PHONE],
        "SmsSdkAppId": TENCENT_APP_ID,
        "SignName": SIGN_NAME,
        "TemplateId": "2100002",
        "TemplateParamSet": ["Xy7#pQ9k"],
    }
    headers = request["headers"]
    assert (headers["X-TC-Action"], headers["X-TC-Version"], headers["X-TC-Region"]) == (
        "SendSms",
        "2021-01-11",
        TENCENT_REGION,
    )
    assert headers["Content-Type"] == "application/json; charset=utf-8"


def assert_failed_send(error: pytest.ExceptionInfo[SmsError], *, detail: str) -> None:
    assert detail in error.value.detail
    assert str(error.value) == GENERIC_MESSAGE
    assert error.value.status == 503
    assert error.value.code == "sms_unavailable"


def test_wrong_secret_gets_the_vendor_signature_refusal(vendor: FakeVendor, tmp_path: Path):
    gateway = vendor_gateway(vendor, tmp_path, sms_access_key_secret="not-the-secret")
    with pytest.raises(SmsError) as error:
        gateway.send(login_message())
    assert_failed_send(error, detail=VENDOR_CODES["signature"][vendor_name(vendor)])
    assert vendor.received == []


def test_vendor_error_code_raises_with_the_code_in_detail(vendor: FakeVendor, tmp_path: Path):
    vendor.mode = "vendor_error"
    with pytest.raises(SmsError) as error:
        vendor_gateway(vendor, tmp_path).send(login_message())
    assert_failed_send(error, detail=VENDOR_CODES["vendor_error"][vendor_name(vendor)])


def test_http_500_raises(vendor: FakeVendor, tmp_path: Path):
    vendor.mode = "http_500"
    with pytest.raises(SmsError) as error:
        vendor_gateway(vendor, tmp_path).send(login_message())
    assert_failed_send(error, detail="500")


def test_timeout_raises(vendor: FakeVendor, tmp_path: Path):
    vendor.mode = "slow"
    with pytest.raises(SmsError) as error:
        vendor_gateway(vendor, tmp_path, timeout=0.5).send(login_message())
    assert_failed_send(error, detail="Timeout")


def test_malformed_json_raises(vendor: FakeVendor, tmp_path: Path):
    vendor.mode = "bad_json"
    with pytest.raises(SmsError) as error:
        vendor_gateway(vendor, tmp_path).send(login_message())
    assert_failed_send(error, detail="not JSON")


def test_unreachable_vendor_raises(tmp_path: Path):
    fake = FakeAliyun()
    fake.close()  # nothing listens on the port any more
    with pytest.raises(SmsError) as error:
        vendor_gateway(fake, tmp_path, timeout=0.5).send(login_message())
    assert_failed_send(error, detail="unreachable")


def test_purpose_without_vendor_template_is_refused_before_sending(
    vendor: FakeVendor, tmp_path: Path
):
    message = SmsMessage(phone=PHONE, purpose="marketing", text="…", params={"x": "1"})
    with pytest.raises(SmsError) as error:
        vendor_gateway(vendor, tmp_path).send(message)
    assert_failed_send(error, detail="marketing")
    assert vendor.received == []


@pytest.mark.parametrize("name", ["aliyun", "tencent"])
@pytest.mark.parametrize(
    "missing", ["sms_access_key_id", "sms_access_key_secret", "sms_sign_name", "sms_template_login"]
)
def test_incomplete_vendor_settings_refuse_to_start(name: str, missing: str, tmp_path: Path):
    settings = vendor_settings(name, tmp_path, "", **{missing: ""})
    with pytest.raises(ConfigError, match=f"IDP_{missing.upper()}"):
        load_backend(BACKENDS, name).from_settings(settings)


def test_tencent_needs_an_app_id(tmp_path: Path):
    with pytest.raises(ConfigError, match="IDP_SMS_APP_ID"):
        TencentSmsGateway.from_settings(vendor_settings("tencent", tmp_path, "", sms_app_id=""))


@pytest.mark.parametrize("name", ["aliyun", "tencent"])
def test_plain_http_endpoint_is_refused_outside_development(name: str, tmp_path: Path):
    settings = vendor_settings(
        name,
        tmp_path,
        "http://sms.example.internal/",
        dev_mode=False,
        secret_key="s",
        data_key="d",
        realname_backend="tencent",
        issuer="https://idp.example",
    )
    with pytest.raises(ConfigError, match="IDP_SMS_ENDPOINT"):
        load_backend(BACKENDS, name).from_settings(settings)


def test_default_endpoints_are_the_vendors_https_apis(tmp_path: Path):
    aliyun = AliyunSmsGateway.from_settings(vendor_settings("aliyun", tmp_path, ""))
    tencent = TencentSmsGateway.from_settings(vendor_settings("tencent", tmp_path, ""))
    assert aliyun.endpoint == "https://dysmsapi.aliyuncs.com/"
    assert (tencent.endpoint, tencent.host) == (
        "https://sms.tencentcloudapi.com/",
        "sms.tencentcloudapi.com",
    )
    assert aliyun.timeout == tencent.timeout == 5.0


# --- the outbox: line format, order, concurrency ----------------------------------------------


def test_outbox_line_has_exactly_the_documented_keys(tmp_path: Path):
    path = tmp_path / "nested" / "dir" / "outbox.jsonl"
    OutboxSmsGateway(path).send(render_message(phone=PHONE, purpose="login", code="654321"))
    [line] = path.read_text(encoding="utf-8").splitlines()
    record = json.loads(line)
    assert list(record) == ["time", "phone", "purpose", "text", "code"]
    assert record["phone"] == PHONE
    assert record["purpose"] == "login"
    assert record["code"] == "654321"
    assert (
        record["text"]
        == "【统一认证登录平台】您的登录验证码为654321，5分钟内有效。如非本人操作，请忽略本短信。"
    )
    assert "统一认证登录平台" in line  # ensure_ascii=False: readable with tail -f
    sent = datetime.fromisoformat(record["time"])
    assert sent.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - sent) < timedelta(minutes=1)
    assert path.stat().st_mode & 0o077 == 0


def test_outbox_messages_are_newest_first_and_limited(tmp_path: Path):
    gateway = OutboxSmsGateway(tmp_path / "outbox.jsonl")
    assert gateway.messages() == []
    for n in range(5):
        gateway.send(render_message(phone=PHONE, purpose="login", code=f"00000{n}"))
    assert [m["code"] for m in gateway.messages()] == [
        "000004",
        "000003",
        "000002",
        "000001",
        "000000",
    ]
    assert [m["code"] for m in gateway.messages(limit=2)] == ["000004", "000003"]


def test_outbox_concurrent_writers_never_mix_lines(tmp_path: Path):
    path = tmp_path / "outbox.jsonl"
    writers = [OutboxSmsGateway(path) for _ in range(8)]

    def write(index: int) -> None:
        for n in range(25):
            writers[index].send(
                render_message(phone=PHONE, purpose="login", code=f"{index:02d}{n:04d}")
            )

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, range(8)))
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["code"] for r in records) == sorted(
        f"{i:02d}{n:04d}" for i in range(8) for n in range(25)
    )


def test_outbox_that_cannot_be_written_is_a_failed_send(tmp_path: Path):
    (tmp_path / "file").write_text("")
    with pytest.raises(SmsError) as error:
        OutboxSmsGateway(tmp_path / "file" / "outbox.jsonl").send(login_message())
    assert_failed_send(error, detail="not writable")


def test_outbox_says_it_is_development_only(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    with caplog.at_level("WARNING", logger="idp.sms.outbox"):
        OutboxSmsGateway(tmp_path / "outbox.jsonl")
    assert [r.getMessage() for r in caplog.records if "development only" in r.getMessage()]


# --- render_message ---------------------------------------------------------------------------


def test_render_login_message():
    message = render_message(phone=PHONE, purpose="login", code="123456")
    assert message == SmsMessage(
        phone=PHONE,
        purpose="login",
        text="【统一认证登录平台】您的登录验证码为123456，5分钟内有效。如非本人操作，请忽略本短信。",
        params={"code": "123456"},
        code="123456",
    )


def test_render_initial_password_message_is_not_html_escaped():
    message = render_message(phone=PHONE, purpose="initial_password", password="a<b&c'9")
    assert (
        message.text
        == "【统一认证登录平台】您的账号已开通，初始密码为a<b&c'9，首次登录需修改密码。"
    )
    assert message.code == "a<b&c'9"
    assert message.params == {"password": "a<b&c'9"}


def test_render_message_refuses_a_missing_parameter():
    with pytest.raises(UndefinedError):
        render_message(phone=PHONE, purpose="login")


# --- /dev/sms ---------------------------------------------------------------------------------


@pytest.fixture
def dev_app(app: Flask) -> Flask:
    """The provider in development mode, where the outbox gateway and /dev/sms are registered."""
    assert isinstance(app.extensions["idp.sms"], OutboxSmsGateway)
    return app


def test_dev_page_lists_the_outbox_newest_first(dev_app: Flask):
    outbox = dev_app.extensions["idp.sms"]
    outbox.send(render_message(phone="13800000001", purpose="login", code="111111"))
    outbox.send(render_message(phone="13800000002", purpose="initial_password", password="P<w>d"))
    response = dev_app.test_client().get("/dev/sms")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert page.index("13800000002") < page.index("13800000001")
    assert "初始密码为P&lt;w&gt;d" in page  # HTML-escaped on the page, literal in the SMS
    assert "您的登录验证码为111111" in page
    assert "initial_password" in page


def test_dev_page_with_an_empty_outbox(dev_app: Flask):
    response = dev_app.test_client().get("/dev/sms")
    assert response.status_code == 200
    assert "暂无短信" in response.get_data(as_text=True)


def test_dev_json_is_the_same_list_with_codes(dev_app: Flask):
    outbox = dev_app.extensions["idp.sms"]
    outbox.send(render_message(phone="13800000001", purpose="login", code="111111"))
    outbox.send(render_message(phone="13800000002", purpose="login", code="222222"))
    response = dev_app.test_client().get("/dev/sms.json")
    assert response.status_code == 200
    assert response.json == outbox.messages()
    assert [m["code"] for m in response.json] == ["222222", "111111"]


@pytest.mark.parametrize("path", ["/dev/sms", "/dev/sms.json"])
def test_dev_pages_are_absent_without_the_outbox(dev_app: Flask, path: str):
    class OtherGateway:
        def send(self, message: SmsMessage) -> None:
            pass

    dev_app.extensions["idp.sms"] = OtherGateway()
    assert dev_app.test_client().get(path).status_code == 404


def test_gateway_classes_expose_from_settings():
    for name, target in BACKENDS.items():
        cls = load_backend(BACKENDS, name)
        assert target.endswith(cls.__name__)
        assert callable(getattr(cls, "from_settings", None))
