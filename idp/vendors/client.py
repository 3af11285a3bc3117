"""What every call to a vendor API shares, whichever vendor and whichever product.

One ``requests.Session`` per adapter keeps connections alive; each POST has a timeout, and a
transport failure raises the caller's own error (``SmsError``, ``RealNameUnavailableError``)
so that each domain keeps its user-facing message. Vendor texts are shortened before they go
into an error's ``detail``, which operators read in the logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import requests

from idp.errors import IdpError

TIMEOUT_SECONDS = 5.0
MESSAGE_LIMIT = 200  # characters of a vendor message kept in ``detail``


def vendor_message(value: object) -> str:
    """A vendor's free-text message, shortened for ``detail``; a missing one is empty."""
    return str(value if value is not None else "")[:MESSAGE_LIMIT]


class VendorClient:
    """One vendor endpoint: the session, the timeout and the error raised on transport failure.

    Subclasses name the ``vendor`` (it starts every ``detail``) and the ``error`` of their
    domain; ``follow_redirects`` is off where a redirect would replay personal data elsewhere.
    """

    vendor: ClassVar[str]
    error: ClassVar[type[IdpError]]
    follow_redirects: ClassVar[bool] = True

    def __init__(self, *, endpoint: str, timeout: float) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.session = requests.Session()

    def post(self, body: bytes, headers: Mapping[str, str]) -> requests.Response:
        """POST ``body`` to the endpoint; a transport failure or timeout raises ``error``."""
        try:
            return self.session.post(
                self.endpoint,
                data=body,
                headers=dict(headers),
                timeout=self.timeout,
                allow_redirects=self.follow_redirects,
            )
        except requests.RequestException as failure:
            raise self.error(
                detail=f"{self.vendor} unreachable: {type(failure).__name__}"
            ) from failure
