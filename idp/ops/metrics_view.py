"""``GET /metrics``: the Prometheus text format, for scrapers from the configured networks
(``IDP_METRICS_NETWORKS``, loopback by default) or with the bearer token (``IDP_METRICS_TOKEN``).

The address checked is the one the provider sees after its trusted proxy hop, so a scrape
passed through the public proxy is refused like any other outside request.
"""

from __future__ import annotations

import hmac
import ipaddress

from flask import Response, request

from idp import metrics
from idp.config import settings
from idp.ops.probes import bp
from idp.security import client_ip


@bp.get("/metrics")
def metrics_page() -> Response:
    if not scrape_allowed():
        return Response("forbidden\n", status=403, mimetype="text/plain")
    body, content_type = metrics.exposition()
    response = Response(body, content_type=content_type)
    response.headers["Cache-Control"] = "no-store"
    return response


def scrape_allowed() -> bool:
    token = settings().metrics_token
    offered = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(offered.encode(), f"Bearer {token}".encode()):
        return True
    try:
        address = ipaddress.ip_address(client_ip())
    except ValueError:
        return False
    return any(address in network for network in allowed_networks(settings().metrics_networks))


def allowed_networks(setting: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [
        ipaddress.ip_network(part.strip(), strict=False)
        for part in setting.split(",")
        if part.strip()
    ]
