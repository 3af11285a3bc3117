"""Aliyun (阿里云) RPC-style APIs: signature version 1.0 and the common answer shape.

Dysms (SMS) and Dytnsapi (号码百科, real-name checks) take the same form-encoded POST of common
parameters plus the action's own, signed with signature version 1.0 (HMAC-SHA1) as Aliyun
documents it ("签名机制", alibabacloud.com/help/zh/doc-detail/252839.htm; also "Request syntax
and signature method V2 for RPC APIs"):

1. sort every parameter except ``Signature`` by name;
2. percent-encode names and values as RFC 3986 (only ``A-Z a-z 0-9 - _ . ~`` stay; space is
   ``%20``, not ``+``) and join them as ``name=value`` with ``&``;
3. StringToSign = ``"POST&%2F&" + percentEncode(canonical query)``;
4. Signature = base64(HMAC-SHA1(key = AccessKeySecret + "&", StringToSign)).

Both answer with a JSON object (also on HTTP 4xx/5xx) whose ``Code`` is ``OK`` on success and
the vendor's error code otherwise, with a free-text ``Message``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import quote

import requests

from idp.errors import IdpError
from idp.vendors.client import vendor_message

REGION = "cn-hangzhou"  # Dysms and Dytnsapi are served from here only, whatever IDP_SMS_REGION says
FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}


class Action(NamedTuple):
    """One RPC action and the API version it belongs to."""

    name: str
    version: str


def percent_encode(value: str) -> str:
    """RFC 3986 percent-encoding of UTF-8, the form Aliyun's gateway signs.

    ``quote`` keeps only letters, digits and ``_.-~`` with ``safe=""``, which is exactly the
    unreserved set; it writes space as ``%20`` and ``*`` as ``%2A``, as Aliyun requires.
    """
    return quote(value, safe="")


def canonical_query(params: Mapping[str, str]) -> str:
    """Sorted, encoded ``name=value`` pairs joined by ``&`` (step 1 and 2 of the algorithm)."""
    pairs = sorted((percent_encode(name), percent_encode(value)) for name, value in params.items())
    return "&".join(f"{name}={value}" for name, value in pairs)


def rpc_signature(params: Mapping[str, str], *, secret: str, method: str = "POST") -> str:
    """Signature version 1.0 of ``params`` (``Signature`` itself must not be among them)."""
    string_to_sign = f"{method}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def common_params(action: Action, *, access_key_id: str) -> dict[str, str]:
    """The parameters every call carries; the fresh nonce and timestamp defeat replays."""
    return {
        "AccessKeyId": access_key_id,
        "Action": action.name,
        "Format": "JSON",
        "RegionId": REGION,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": uuid.uuid4().hex,
        "SignatureVersion": "1.0",
        "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Version": action.version,
    }


def signed_body(params: Mapping[str, str], *, secret: str) -> bytes:
    """The POST body: ``params`` and their ``Signature``, form-encoded as they were signed."""
    signed = {**params, "Signature": rpc_signature(params, secret=secret)}
    return canonical_query(signed).encode("ascii")


def parse_answer(response: requests.Response, *, error: type[IdpError]) -> dict[str, Any]:
    """The JSON object Aliyun answers with, also on 4xx; anything else raises ``error``."""
    try:
        answer = response.json()
    except ValueError:
        raise error(detail=f"aliyun HTTP {response.status_code}: answer is not JSON") from None
    if not isinstance(answer, dict):
        raise error(detail=f"aliyun HTTP {response.status_code}: answer is not a JSON object")
    return answer


def require_ok(status: int, answer: Mapping[str, Any], *, error: type[IdpError]) -> None:
    """Only HTTP 200 with ``"Code": "OK"`` is a success; the vendor code goes into ``detail``."""
    code = answer.get("Code")
    if status == 200 and code == "OK":
        return
    message = vendor_message(answer.get("Message"))
    raise error(detail=f"aliyun HTTP {status} Code={code}: {message}")
