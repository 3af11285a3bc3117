"""Pending authorization requests seen from the login side: where a login hands one back
(``hand_back_url``), and one that waits while an organisation registers: the UKey login
started from a relying party (its 机构注册, or the login page's) leads an organisation without a
registration into the wizard, and the wizard's end hands back to that request instead of the
portal. Kept in this browser's own cookie session, next to the login challenge."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask import session as browser_session

from idp import context

KEY = "registering_for"
HAND_BACK = "idp.auth.hand_back"


def install_hand_back(app: Flask, url_for_request: Callable[[str], str]) -> None:
    """The protocol layer (idp.oidc, which this package may not import) says where a pending
    request continues."""
    app.extensions[HAND_BACK] = url_for_request


def hand_back_url(interaction: str) -> str:
    """Where a login, or a page it leads to, continues the pending request ``interaction``."""
    url: str = context.app().extensions[HAND_BACK](interaction)
    return url


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
