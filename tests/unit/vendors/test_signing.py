"""Request signing against the vendors' documented examples: ours (``idp.vendors``) and the
loopback fakes' independent implementation (``tests.vendor_signing``), which the SMS and
real-name contract suites rely on to refuse a badly signed request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

from idp.vendors import aliyun, tencent
from tests.vendor_signing import aliyun_expected_signature, tencent_expected_signature

# Aliyun's signature example (Dysms SendSms, GET, AccessKeySecret "testSecret").
ALIYUN_DOC_PARAMS = {
    "AccessKeyId": "testId",
    "Action": "SendSms",
    "Format": "XML",
    "OutId": "123",
    "PhoneNumbers": "15300000001",
    "RegionId": "cn-hangzhou",
    "SignName": "阿里云短信测试专用",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "SignatureVersion": "1.0",
    "TemplateCode": "SMS_71390007",
    "TemplateParam": '{"customer":"test"}',
    "Timestamp": "2017-07-12T02:42:19Z",
    "Version": "2017-05-25",
}
ALIYUN_DOC_SIGNATURE = "zJDF+Lrzhj/ThnlvIToysFRq6t4="

# Tencent Cloud API 3.0 "Signature v3" example (CVM DescribeInstances, POST JSON).
TENCENT_DOC_SECRET_ID = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"
TENCENT_DOC_SECRET = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
TENCENT_DOC_HOST = "cvm.tencentcloudapi.com"
TENCENT_DOC_TIMESTAMP = 1551113065
TENCENT_DOC_PAYLOAD = (
    b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
)
TENCENT_DOC_SIGNATURE = "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
TENCENT_DOC_AUTHORIZATION = (
    f"TC3-HMAC-SHA256 Credential={TENCENT_DOC_SECRET_ID}/2019-02-25/cvm/tc3_request, "
    f"SignedHeaders=content-type;host, Signature={TENCENT_DOC_SIGNATURE}"
)


# --- Aliyun signature version 1.0 --------------------------------------------------------------


def test_aliyun_signature_reproduces_the_documented_example():
    signature = aliyun.rpc_signature(ALIYUN_DOC_PARAMS, secret="testSecret", method="GET")
    assert signature == ALIYUN_DOC_SIGNATURE


def test_fake_aliyun_verifier_reproduces_the_documented_example():
    signature = aliyun_expected_signature(ALIYUN_DOC_PARAMS, secret="testSecret", method="GET")
    assert signature == ALIYUN_DOC_SIGNATURE


def test_aliyun_percent_encoding_keeps_only_the_unreserved_set():
    assert aliyun.percent_encode("aZ09-_.~ *+/=&·张") == (
        "aZ09-_.~%20%2A%2B%2F%3D%26%C2%B7%E5%BC%A0"
    )


def test_aliyun_signed_body_is_the_params_and_their_signature_sorted():
    params = {"b": "2 ·", "A": "1"}
    body = aliyun.signed_body(params, secret="s")
    signature = aliyun.rpc_signature(params, secret="s")
    assert parse_qsl(body.decode("ascii"), strict_parsing=True) == [
        ("A", "1"),
        ("Signature", signature),
        ("b", "2 ·"),
    ]


def test_aliyun_common_params_carry_a_fresh_nonce_and_a_utc_timestamp():
    action = aliyun.Action(name="SendSms", version="2017-05-25")
    first = aliyun.common_params(action, access_key_id="id")
    second = aliyun.common_params(action, access_key_id="id")
    assert first["SignatureNonce"] != second["SignatureNonce"]
    assert (first["Action"], first["Version"], first["AccessKeyId"]) == (
        "SendSms",
        "2017-05-25",
        "id",
    )
    stamp = datetime.strptime(first["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs(datetime.now(UTC) - stamp) < timedelta(minutes=1)


# --- Tencent Cloud TC3-HMAC-SHA256 -------------------------------------------------------------


def test_tencent_signature_reproduces_the_documented_example():
    canonical = tencent.canonical_request(host=TENCENT_DOC_HOST, payload=TENCENT_DOC_PAYLOAD)
    signature = tencent.tc3_signature(
        secret_key=TENCENT_DOC_SECRET,
        canonical=canonical,
        timestamp=TENCENT_DOC_TIMESTAMP,
        service="cvm",
    )
    assert signature == TENCENT_DOC_SIGNATURE


def test_tencent_signed_headers_carry_the_documented_authorization():
    action = tencent.Action(service="cvm", name="DescribeInstances", version="2017-03-12")
    headers = tencent.signed_headers(
        action,
        TENCENT_DOC_PAYLOAD,
        host=TENCENT_DOC_HOST,
        secret_id=TENCENT_DOC_SECRET_ID,
        secret_key=TENCENT_DOC_SECRET,
        timestamp=TENCENT_DOC_TIMESTAMP,
    )
    assert headers == {
        "Authorization": TENCENT_DOC_AUTHORIZATION,
        "Content-Type": "application/json; charset=utf-8",
        "Host": TENCENT_DOC_HOST,
        "X-TC-Action": "DescribeInstances",
        "X-TC-Version": "2017-03-12",
        "X-TC-Timestamp": "1551113065",
    }


def test_tencent_credential_date_is_the_utc_day():
    # 2019-02-25T23:30:00Z is already the 26th in Beijing.
    assert tencent.credential_scope(1551137400, service="sms") == "2019-02-25/sms/tc3_request"


def test_fake_tencent_verifier_reproduces_the_documented_example():
    headers = {"content-type": "application/json; charset=utf-8", "host": TENCENT_DOC_HOST}
    signature = tencent_expected_signature(
        secret_key=TENCENT_DOC_SECRET,
        headers=headers,
        payload=TENCENT_DOC_PAYLOAD,
        timestamp=str(TENCENT_DOC_TIMESTAMP),
        service="cvm",
    )
    assert signature == TENCENT_DOC_SIGNATURE
