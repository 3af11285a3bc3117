"""``idp legacy``: legacy accounts handed over by relying parties (OTP seeds, keys)."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from idp import db, web

legacy_cli = AppGroup("legacy", help="Legacy accounts of relying parties (OTP tokens, keys).")


@legacy_cli.command("import")
@click.argument("file")
def legacy_import(file: str) -> None:
    """Import legacy accounts from FILE, a UTF-8 CSV with the header
    client_id,uscc,org_type,legacy_account,totp_secret,legacy_key (one of the last two filled
    per row). Re-importing is safe. Prints how many rows were imported, updated, unchanged and
    rejected (with each rejected row's line and reason); exit code 1 only when the file cannot
    be read, and then nothing is imported."""
    from idp.orgs.legacy import LegacyFileError, import_file, refuse_file

    try:
        data = Path(file).read_bytes()
    except OSError as error:
        raise click.ClickException(f"cannot read {file}: {error.strerror or error}") from None
    try:
        report = import_file(db.session(), data)
    except LegacyFileError as error:
        web.rollback()
        refuse_file(error, actor="cli")
        db.session().commit()
        raise click.ClickException(f"{file}: {error.message}; nothing imported") from None
    db.session().commit()
    for line in report.lines():
        click.echo(line)
