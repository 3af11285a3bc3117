"""Local fakes of Aliyun and Tencent Cloud APIs (SMS and real-name check): a loopback server
base, and the vendors' side of request signing, written independently from their documentation;
a fake recomputes the signature with these and refuses a request whose signature differs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import threading
import uuid
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


def aliyun_encode(text: str) -> str:
    """RFC 3986 as Aliyun states it: unreserved bytes stay, every other byte is %XY (upper case)."""
    return "".join(
        chr(byte) if byte in UNRESERVED else f"%{byte:02X}" for byte in text.encode("utf-8")
    )


def aliyun_expected_signature(params: dict[str, str], *, secret: str, method: str) -> str:
    query = "&".join(f"{aliyun_encode(k)}={aliyun_encode(v)}" for k, v in sorted(params.items()))
    string_to_sign = method + "&" + aliyun_encode("/") + "&" + aliyun_encode(query)
    digest = hmac.new((secret + "&").encode(), string_to_sign.encode(), "sha1").digest()
    return base64.b64encode(digest).decode()


def tencent_expected_signature(
    *,
    secret_key: str,
    headers: dict[str, str],
    payload: bytes,
    timestamp: str,
    service: str,
    date: str | None = None,
) -> str:
    """TC3-HMAC-SHA256 over the given signed headers (lower-case names), POST, empty query; the
    credential date defaults to the timestamp's UTC day, as the vendor derives it."""
    date = date or datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%d")
    names = sorted(headers)
    canonical_headers = "".join(f"{name}:{headers[name].strip().lower()}\n" for name in names)
    canonical = "\n".join(
        ["POST", "/", "", canonical_headers, ";".join(names), hashlib.sha256(payload).hexdigest()]
    )
    scope = f"{date}/{service}/tc3_request"
    string_to_sign = "\n".join(
        ["TC3-HMAC-SHA256", timestamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = ("TC3" + secret_key).encode()
    for part in (date, service, "tc3_request"):
        key = hmac.new(key, part.encode(), "sha256").digest()
    return hmac.new(key, string_to_sign.encode(), "sha256").hexdigest()


AUTHORIZATION = re.compile(
    r"TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[a-z]+)/tc3_request, "
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})"
)


def tencent_error(code: str, message: str) -> dict[str, Any]:
    return {
        "Response": {"Error": {"Code": code, "Message": message}, "RequestId": str(uuid.uuid4())}
    }


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        status, extra, payload = self.server.vendor.respond(self.headers, body)  # type: ignore[attr-defined]
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            pass  # the client gave up (timeout tests)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class LoopbackVendor(ABC):
    """A fake vendor API on 127.0.0.1 (ephemeral port). ``mode`` selects the answer; requests
    accepted are kept in ``received``; a "slow" answer waits for ``released`` (set at close)."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.received: list[dict[str, Any]] = []
        self.released = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.vendor = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    @abstractmethod
    def respond(self, headers: Any, body: bytes) -> tuple[int, dict[str, str], bytes]:
        """Status, extra headers and body of the answer to one request."""
