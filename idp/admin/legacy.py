"""原系统账号导入 in the platform console: the CSV file ``idp legacy import`` reads, uploaded
after step-up, imported by the same service (``idp.orgs.legacy.import_file``) and answered
with the same per-row report. A file that cannot be read as a whole imports nothing."""

from __future__ import annotations

from typing import Any

from flask import render_template, request
from flask_babel import gettext as _

from idp import db, web
from idp.admin import session as admin_session
from idp.admin.forms import LegacyUploadForm
from idp.admin.views import actor, bp, requires_step_up
from idp.orgs.legacy import COLUMNS, ImportReport, LegacyFileError, import_file, refuse_file

MAX_FILE_BYTES = 1024 * 1024
# The multipart envelope and the CSRF field around the file; beyond file + this, the request
# is refused before it is read (413).
FORM_OVERHEAD = 16 * 1024


@bp.url_value_preprocessor
def allow_upload(endpoint: str | None, _values: dict[str, Any] | None) -> None:
    """The upload takes a body larger than the provider's usual 64 KiB, for a live platform
    admin session only. Set before any ``before_request`` (the CSRF check reads the form)."""
    if (
        endpoint == f"{bp.name}.legacy_upload"
        and request.method == "POST"
        and admin_session.current() is not None
    ):
        request.max_content_length = MAX_FILE_BYTES + FORM_OVERHEAD


@bp.route("/legacy", methods=["GET", "POST"])
@requires_step_up
def legacy_upload() -> Any:
    form = LegacyUploadForm()
    error, status, report = "", 200, None
    if form.validate_on_submit():
        data = form.file.data.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            error, status = _("文件不能超过 %(n)d KB", n=MAX_FILE_BYTES // 1024), 413
        else:
            report, error, status = _import(data)
    elif request.method == "POST":
        status = 400
    return render_template(
        "admin/legacy.html",
        form=form,
        error=error,
        report=report,
        columns=",".join(COLUMNS),
        max_kb=MAX_FILE_BYTES // 1024,
    ), status


def _import(data: bytes) -> tuple[ImportReport | None, str, int]:
    try:
        report = import_file(db.session(), data, actor=actor())
    except LegacyFileError as failure:
        web.rollback()
        refuse_file(failure, actor=actor())
        db.session().commit()
        message = _("文件无法读取，未导入任何账号：%(reason)s", reason=failure.message)
        return None, message, 400
    db.session().commit()
    return report, "", 200
