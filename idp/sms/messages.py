"""What an SMS says: the text rendered from ``templates/sms/<purpose>.txt`` and, for the cloud
gateways, which vendor-approved template carries each purpose.

The texts are rendered with a Jinja environment of their own rather than Flask's
``render_template``: the app's template folders depend on which blueprints are registered (the
``sms_dev`` blueprint that also points at ``templates/`` exists only in development), and an SMS
must render the same in every mode.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from idp.config import Settings
from idp.sms.interface import SmsError, SmsMessage

TEMPLATES = Path(__file__).parent / "templates"

# Purpose → the settings field holding the vendor template id (Aliyun TemplateCode, Tencent
# TemplateId). Vendors only deliver texts they approved in advance, so they get an id, not our text.
VENDOR_TEMPLATE_SETTINGS = {
    "login": "sms_template_login",
    "initial_password": "sms_template_password",
    "join": "sms_template_join",
    "join_rejected": "sms_template_join_rejected",
    "operator_added": "sms_template_operator_added",
    "password_changed": "sms_template_password_changed",
    "password_reset": "sms_template_password_reset",
}


@cache
def _environment() -> Environment:
    """One environment per process: it holds only the loader and its template cache, no app state.

    Autoescape stays off for ``.txt``: an SMS is plain text, and HTML escaping would put ``&amp;``
    into a phone's screen. ``StrictUndefined`` makes a missing parameter an error, not a blank code.
    """
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
    )


def render_message(*, phone: str, purpose: str, **params: str) -> SmsMessage:
    """Render ``sms/<purpose>.txt`` with ``params`` into a message ready for any gateway.

    ``params`` also go to the vendor APIs as template parameters, in the order given (Tencent's
    templates are positional). ``code`` keeps the one-time value for the development outbox.
    """
    text = _environment().get_template(f"sms/{purpose}.txt").render(**params).strip()
    code = params.get("code") or params.get("password", "")
    return SmsMessage(phone=phone, purpose=purpose, text=text, params=dict(params), code=code)


def vendor_templates(settings: Settings) -> dict[str, str]:
    """The vendor template id configured for each purpose (empty string when not configured)."""
    return {purpose: getattr(settings, name) for purpose, name in VENDOR_TEMPLATE_SETTINGS.items()}


def template_id(templates: dict[str, str], purpose: str) -> str:
    """The vendor template for ``purpose``; a purpose without one cannot be sent through a vendor."""
    found = templates.get(purpose, "")
    if not found:
        raise SmsError(detail=f"no vendor SMS template configured for purpose {purpose!r}")
    return found
