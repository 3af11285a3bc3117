"""``/dev/sms``: the development outbox in the browser and as JSON for browser tests.

Registered by ``idp.sms.init_app`` only in development mode with the outbox backend. The
blueprint's ``templates/`` folder also holds the SMS bodies (``sms/*.txt``); those are rendered by
``idp.sms.messages`` with their own loader, so they do not depend on this blueprint.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, jsonify, render_template

from idp.sms import gateway
from idp.sms.outbox import OutboxSmsGateway

bp = Blueprint("sms_dev", __name__, url_prefix="/dev", template_folder="templates")


def outbox_messages() -> list[dict[str, str]]:
    """The outbox, newest first; 404 when the app does not send through the outbox."""
    current = gateway()
    if not isinstance(current, OutboxSmsGateway):
        abort(404)
    return current.messages()


@bp.get("/sms")
def outbox_page() -> str:
    return render_template("sms_dev/outbox.html", messages=outbox_messages())


@bp.get("/sms.json")
def outbox_json() -> Response:
    """The same list, with each ``code`` field, for tests that read codes like a phone would."""
    return jsonify(outbox_messages())
