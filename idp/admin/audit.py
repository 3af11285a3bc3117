"""The audit trail in the platform console: every organisation's and the platform's events,
filtered by action, actor, target, result and dates, newest first. Names and phones are
recorded masked; the view masks what could still identify a person (a full phone number in
a target, the last part of an address)."""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime, time, timedelta

from flask import render_template, request, url_for
from flask_babel import gettext as _

from idp import db
from idp.admin.forms import AuditFilterForm
from idp.admin.views import bp
from idp.audit import wording
from idp.audit.queries import EventFilter, list_events
from idp.security import mask_phone

PER_PAGE = 50
CHINA_TIME = timedelta(hours=8)  # the dates people pick are Beijing dates
FULL_PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")


def mask_text(text: str) -> str:
    """A full mainland phone number anywhere in ``text`` shown as 138****5678."""
    return FULL_PHONE.sub(lambda match: mask_phone(match.group(0)), text)


def mask_ip(text: str) -> str:
    """203.0.113.7 → 203.0.113.*; an IPv6 address down to its /48; anything else as is."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return text
    if address.version == 4:
        return text.rsplit(".", 1)[0] + ".*"
    network = ipaddress.ip_network(f"{address}/48", strict=False)
    return f"{network.network_address}/48"


def _beijing_midnight_utc(day: object) -> datetime:
    start = datetime.combine(day, time.min).replace(tzinfo=UTC)  # type: ignore[arg-type]
    return start - CHINA_TIME


@bp.get("/audit")
def audit_log() -> tuple[str, int]:
    form = AuditFilterForm(request.args)
    form.action.choices = [("", _("全部"))] + [
        (name, f"{words} ({name})") for name, words in sorted(wording.ACTIONS.items())
    ]
    page_number = request.args.get("page", 1, type=int) or 0
    if not form.validate():
        return render_template("admin/audit.html", form=form, page=None), 400
    since, until = form.dates()
    where = EventFilter(
        action=form.action.data or "",
        actor=form.actor.data or "",
        target=form.target.data or "",
        result=form.result.data or "",
        since=_beijing_midnight_utc(since) if since else None,
        until=_beijing_midnight_utc(until) + timedelta(days=1) if until else None,
    )
    page = list_events(db.session(), where, page=page_number, per_page=PER_PAGE)
    return render_template(
        "admin/audit.html",
        form=form,
        page=page,
        page_url=lambda number: url_for(
            "admin.audit_log", **{**request.args.to_dict(), "page": number}
        ),
        describe=lambda action: wording.action_words(action),
        result_words=wording.result_words,
        mask_text=mask_text,
        mask_ip=mask_ip,
    ), 200
