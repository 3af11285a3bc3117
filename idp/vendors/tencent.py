"""Tencent Cloud (腾讯云) API 3.0: TC3-HMAC-SHA256 signing and the common answer shape.

SMS and FaceID (real-name checks) take a POST with a JSON body, signed as Tencent Cloud API 3.0
"Signature v3" (签名方法 v3) documents it; only the service in the credential scope differs:

    CanonicalRequest = "POST\\n/\\n\\n" + "content-type:<ct>\\nhost:<host>\\n" + "\\n"
                       + "content-type;host\\n" + hex(sha256(payload))
    StringToSign     = "TC3-HMAC-SHA256\\n" + timestamp + "\\n"
                       + "<UTC date>/<service>/tc3_request\\n" + hex(sha256(CanonicalRequest))
    key              = HMAC(HMAC(HMAC("TC3" + SecretKey, date), service), "tc3_request")
    Signature        = hex(HMAC-SHA256(key, StringToSign))

Both answer HTTP 200 with ``{"Response": {...}}``; a refused request carries ``Error`` (``Code``,
``Message``) inside ``Response`` instead of the action's result.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

import requests

from idp.errors import IdpError
from idp.vendors.client import vendor_message

ALGORITHM = "TC3-HMAC-SHA256"
CONTENT_TYPE = "application/json; charset=utf-8"
SIGNED_HEADERS = "content-type;host"


class Action(NamedTuple):
    """One API 3.0 action: the service it is signed for, its name and its API version."""

    service: str
    name: str
    version: str


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def canonical_request(*, host: str, payload: bytes) -> str:
    """The POST canonical request: empty query, the two signed headers, the body's hash."""
    headers = f"content-type:{CONTENT_TYPE}\nhost:{host.lower()}\n"
    body_hash = hashlib.sha256(payload).hexdigest()
    return f"POST\n/\n\n{headers}\n{SIGNED_HEADERS}\n{body_hash}"


def credential_scope(timestamp: int, *, service: str) -> str:
    """``<date>/<service>/tc3_request``; the date is UTC, or requests fail around midnight."""
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    return f"{date}/{service}/tc3_request"


def tc3_signature(*, secret_key: str, canonical: str, timestamp: int, service: str) -> str:
    """Hex HMAC-SHA256 of the string to sign with the date/service-derived key."""
    scope = credential_scope(timestamp, service=service)
    hashed = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    string_to_sign = f"{ALGORITHM}\n{timestamp}\n{scope}\n{hashed}"
    key = _hmac(("TC3" + secret_key).encode("utf-8"), scope.split("/")[0])
    for part in (service, "tc3_request"):
        key = _hmac(key, part)
    return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def signed_headers(
    action: Action, body: bytes, *, host: str, secret_id: str, secret_key: str, timestamp: int
) -> dict[str, str]:
    """Common headers and the ``Authorization`` computed over exactly these headers and ``body``."""
    canonical = canonical_request(host=host, payload=body)
    signature = tc3_signature(
        secret_key=secret_key, canonical=canonical, timestamp=timestamp, service=action.service
    )
    credential = f"{secret_id}/{credential_scope(timestamp, service=action.service)}"
    authorization = (
        f"{ALGORITHM} Credential={credential}, "
        f"SignedHeaders={SIGNED_HEADERS}, Signature={signature}"
    )
    return {
        "Authorization": authorization,
        "Content-Type": CONTENT_TYPE,
        "Host": host,
        "X-TC-Action": action.name,
        "X-TC-Version": action.version,
        "X-TC-Timestamp": str(timestamp),
    }


def parse_answer(response: requests.Response, *, error: type[IdpError]) -> dict[str, Any]:
    """The ``Response`` object of the JSON answer; anything else raises ``error``."""
    if response.status_code != 200:
        raise error(detail=f"tencent HTTP {response.status_code}")
    try:
        answer = response.json()
    except ValueError:
        raise error(detail="tencent answer is not JSON") from None
    inner = answer.get("Response") if isinstance(answer, dict) else None
    if not isinstance(inner, dict):
        raise error(detail="tencent answer has no Response object")
    return inner


def require_no_error(answer: Mapping[str, Any], *, error: type[IdpError]) -> None:
    """A request-level ``Error`` wins over any result; its vendor code goes into ``detail``."""
    refusal = answer.get("Error")
    if isinstance(refusal, dict):
        message = vendor_message(refusal.get("Message"))
        raise error(detail=f"tencent {refusal.get('Code')}: {message}")
