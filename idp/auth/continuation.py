"""A pending authorization request that waits while an organisation registers: the UKey login
started from a relying party (its 机构注册, or the login page's) leads an organisation without a
registration into the wizard, and the wizard's end hands back to that request instead of the
portal. Kept in this browser's own cookie session, next to the login challenge."""

from __future__ import annotations

from flask import session as browser_session

KEY = "registering_for"


def wait_for_registration(interaction: str) -> None:
    """Remember ``interaction`` (or forget an older one) while this browser registers."""
    if interaction:
        browser_session[KEY] = interaction
    else:
        browser_session.pop(KEY, None)


def registration_done() -> str:
    """The request to continue once the registration or binding is saved ("" if none)."""
    value = browser_session.pop(KEY, "")
    return value if isinstance(value, str) else ""
