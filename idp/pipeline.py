"""What every request passes through before and after its view, in one place and in order.

Two hooks instead of one per concern: each hook call costs Flask a dispatch, and most of the
concerns are browser work (the login and admin session cookies, the browser id, the language
cookie, widening the CSP ``form-action`` for a pending authorization) that does nothing on the
endpoints only machines call: the protocol's JSON endpoints, the management API and the probes.
Their packages name them (``extensions.serves_machines``) and the browser work is skipped
there. Everything else runs for every request: the request id and access line, the
development-mode check, CSRF protection (its exemptions decide), the security headers and the
database commit.
"""

from __future__ import annotations

from flask import Flask, Request, Response
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_babel import refresh

from idp import context, db, logs, security, web
from idp.admin import forget_request_state as forget_admin_state
from idp.admin import session as admin_session
from idp.auth import client as browser_client
from idp.auth import session as login_session
from idp.extensions import MACHINE_ENDPOINTS, check_csrf, remember_locale
from idp.oidc import interaction
from idp.oidc.interaction import allow_redirect_in_form_action
from idp.request_params import keep_form_body


def is_machine_request() -> bool:
    """The request's endpoint (or its blueprint) is one ``serves_machines`` named."""
    endpoint = context.request().endpoint
    if endpoint is None:  # no route matched: a browser may be asking
        return False
    machines: set[str] = context.app().extensions[MACHINE_ENDPOINTS]
    return endpoint in machines or endpoint[: endpoint.find(".") + 1] in machines


def begin() -> Response | None:
    """Before the view; a response returned here refuses the request (the view never runs)."""
    forget_earlier_request()
    logs.start()
    keep_form_body()  # before the CSRF check parses the form
    check_csrf()
    return web.only_local_in_development()


def forget_earlier_request() -> None:
    """An app context that spans requests (a test client inside ``app.app_context()``) keeps
    ``g``: drop what an earlier request left there. A request's own context starts empty."""
    if next(iter(context.g()), None) is None:
        return
    db.close_session()
    refresh()  # the locale, chosen anew for every request
    login_session.forget_request_state()
    interaction.forget_request_state()
    forget_admin_state()


def finish(response: Response) -> Response:
    """After the view (and after an error handler): cookies, headers, commit, access line."""
    browser = not is_machine_request()
    if browser:
        response = admin_session.write_cookie(response)
        response = allow_redirect_in_form_action(response)
        response = browser_client.write_browser_cookie(response)
        response = login_session.write_cookie(response)
    response = security.add_security_headers(response)
    if browser:
        response = remember_locale(response)
    response = db.commit_session(response)
    return logs.finish(response)


class CookieState(SecureCookieSessionInterface):
    """Flask's signed cookie (``idp_csrf``: the CSRF secret), decoded only when the request
    carries it; Flask would build its signing serializer for every request, cookie or not."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        # No Cookie header (machines send none): no cookies to parse. ``in`` before indexing:
        # a missing key costs MultiDict.get a raised and caught exception.
        name = self.get_cookie_name(app)
        if app.secret_key and (
            "HTTP_COOKIE" not in request.environ
            or name not in request.cookies
            or not request.cookies[name]
        ):
            return self.session_class()
        return super().open_session(app, request)


def init_app(app: Flask) -> None:
    """Registered before any other hook, so that the request id and the access line cover
    requests another hook refuses."""
    app.session_interface = CookieState()
    app.before_request(begin)
    app.after_request(finish)
