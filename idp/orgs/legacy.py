"""Legacy accounts: the relying parties' old logins (an OTP token or a key per organisation
identity), imported from the RP's export, and bound to an org identity on the 是 path of the
registration wizard (docs/design.md §2, journey 1).

Secrets are sealed at rest (``idp.sealing``). Binding answers every mismatch (unknown account,
other USCC or org type, already bound, wrong or reused code) with one message, so the page is
no oracle for which legacy accounts exist; five wrong tries lock binding of that account.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hmac
import io
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

import pyotp
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from idp import audit, db
from idp.config import settings
from idp.db import rowcount, utcnow
from idp.errors import IdpError
from idp.identity.lookup import find_org
from idp.identity.models import LegacyAccount, Organisation, OrgType
from idp.identity.uscc import is_valid_uscc
from idp.oidc.clients import list_clients
from idp.orgs.registration import Applicant, add_identity, platforms
from idp.sealing import seal, unseal
from idp.store import store

MAX_BIND_TRIES = 5
# A TOTP code is accepted for at most three 30 s steps (valid_window=1): remembering a used
# code for 90 s covers its whole life.
USED_CODE_TTL = timedelta(seconds=90)
TOTP_MIN_LENGTH = 16
KEY_MAX_LENGTH = 200
ACCOUNT_REF_MAX_LENGTH = 100
IMPORTED = "orgs.legacy_imported"
COLUMNS = ("client_id", "uscc", "org_type", "legacy_account", "totp_secret", "legacy_key")


# --- binding (是) ---------------------------------------------------------------------------------


class LegacyBindError(IdpError):
    """One answer for every binding failure: no oracle for which accounts exist."""

    code = "legacy_bind_failed"
    message = _l("账号或动态码错误")


class LegacyBindLockedError(IdpError):
    code = "legacy_bind_locked"
    status = 429


@dataclass(frozen=True)
class BindRequest:
    """What the binding page posts: the RP's legacy account and its OTP code or key."""

    org_type: OrgType
    client_id: str
    account_ref: str
    otp_code: str = ""
    legacy_key: str = ""

    @property
    def masked_ref(self) -> str:
        ref = self.account_ref
        return f"{ref[:2]}***{ref[-2:]}" if len(ref) > 6 else "***"


def bind(session: Session, *, applicant: Applicant, request: BindRequest) -> Organisation:
    """The 是 path: prove the legacy account, then give the organisation (created when new) the
    identity, registered for the account's RP and bound to the account.

    The store is touched before the first database write: on SQLite a flushed write holds the
    database lock, which the SQL store's own connection would wait on."""
    account = check_binding(session, applicant=applicant, request=request)
    org, identity = add_identity(
        session,
        uscc=applicant.uscc,
        name=applicant.org_name,
        org_type=request.org_type,
        client_ids=[request.client_id],
        legacy_account=account,
    )
    # Conditional update: of two concurrent bindings of one account exactly one wins.
    marked = session.execute(
        update(LegacyAccount)
        .where(LegacyAccount.id == account.id, LegacyAccount.bound_identity_id.is_(None))
        .values(bound_identity_id=identity.id, bound_at=utcnow())
    )
    if rowcount(marked) != 1:
        raise bind_failed(applicant, request, reason="already_bound")
    audit.record(
        "orgs.legacy_bound",
        actor=applicant.actor,
        target=f"legacy:{request.client_id}:{request.masked_ref}",
        org_id=org.id,
        details={"org_type": request.org_type.value, "legacy_account_id": str(account.id)},
    )
    return org


def check_binding(session: Session, *, applicant: Applicant, request: BindRequest) -> LegacyAccount:
    """The legacy account when ``request`` proves it for ``applicant``; raise otherwise.

    The try is counted before anything is checked (atomic ``incr``), so parallel guesses cannot
    exceed the limit."""
    subject = f"{request.client_id}:{request.account_ref}"
    lock_key, tries_key = f"legacy-bind:lock:{subject}", f"legacy-bind:tries:{subject}"
    lockout = timedelta(seconds=settings().legacy_bind_lockout_seconds)
    tries = store().incr(tries_key, lockout)
    if store().get(lock_key) is not None or tries > MAX_BIND_TRIES:
        raise bind_locked(applicant, request)
    account = find_legacy_account(session, client_id=request.client_id, ref=request.account_ref)
    reason = mismatch(session, account, applicant=applicant, request=request)
    if account is None or reason is not None or (reason := check_secret(account, request)):
        if tries >= MAX_BIND_TRIES:
            store().put(lock_key, b"1", lockout)
        raise bind_failed(applicant, request, reason=reason or "unknown_account")
    store().delete(tries_key)
    return account


def find_legacy_account(session: Session, *, client_id: str, ref: str) -> LegacyAccount | None:
    """A legacy account is named by its RP and the RP's own account id."""
    return session.scalar(
        select(LegacyAccount).where(
            LegacyAccount.client_id == client_id, LegacyAccount.account_ref == ref
        )
    )


def mismatch(
    session: Session,
    account: LegacyAccount | None,
    *,
    applicant: Applicant,
    request: BindRequest,
) -> str | None:
    """Why ``account`` cannot be bound by ``applicant`` as ``request.org_type`` (None: it can)."""
    if account is None:
        return "unknown_account"
    if account.uscc != applicant.uscc or account.org_type != request.org_type:
        return "mismatch"
    if account.bound_identity_id is not None:
        return "already_bound"
    if request.client_id not in {c.client_id for c in platforms(session, request.org_type)}:
        return "client_not_allowed"
    return None


def check_secret(account: LegacyAccount, request: BindRequest) -> str | None:
    """None when the OTP code (±1 step, single use) or the key matches the account's secret."""
    secret = unseal(account.secret_sealed)
    if account.secret_kind == "totp":  # noqa: S105  (a kind, not a password)
        code = request.otp_code
        if not code or not pyotp.TOTP(secret).verify(code, valid_window=1):
            return "wrong_secret"
        if not store().add(f"legacy-bind:otp-used:{account.id}:{code}", b"1", USED_CODE_TTL):
            return "code_reused"
        return None
    given = request.legacy_key
    if not given or not hmac.compare_digest(secret.encode(), given.encode()):
        return "wrong_secret"
    return None


def bind_failed(applicant: Applicant, request: BindRequest, *, reason: str) -> LegacyBindError:
    _record_failure(applicant, request, reason)
    return LegacyBindError()


def bind_locked(applicant: Applicant, request: BindRequest) -> LegacyBindLockedError:
    _record_failure(applicant, request, "locked")
    minutes = math.ceil(settings().legacy_bind_lockout_seconds / 60)
    return LegacyBindLockedError(_("错误次数过多，请 %(minutes)d 分钟后再试", minutes=minutes))


def _record_failure(applicant: Applicant, request: BindRequest, reason: str) -> None:
    """Audited where the organisation, if it is registered already, reads its 操作日志."""
    existing = find_org(db.session(), applicant.uscc)
    audit.record(
        "orgs.legacy_bind_failed",
        actor=applicant.actor,
        target=f"legacy:{request.client_id}:{request.masked_ref}",
        result=reason,
        org_id=existing.id if existing else None,
        details={"org_type": request.org_type.value},
    )


# --- import (idp legacy import) -------------------------------------------------------------------


class LegacyFileError(IdpError):
    """The import file cannot be read as a whole (encoding, CSV syntax, header): nothing is
    imported."""

    code = "legacy_file_invalid"
    message = _l("文件无法读取，未导入任何账号")


def refuse_file(error: LegacyFileError, *, actor: str) -> None:
    """Record a file that could not be read (after the caller rolled back: nothing imported)."""
    audit.record(IMPORTED, actor=actor, result=error.code)


class RowRejectedError(ValueError):
    """One row of the import file is refused; the message is the reason in the report."""


@dataclass(frozen=True)
class CsvRow:
    line: int  # where the row starts in the file (the header is line 1)
    cells: list[str]


@dataclass(frozen=True)
class LegacyEntry:
    """One valid row: a legacy account as the RP exported it (secret still in clear)."""

    client_id: str
    uscc: str
    org_type: OrgType
    account_ref: str
    secret_kind: str  # "totp" or "key"
    secret: str


@dataclass
class ImportReport:
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        summary = (
            f"imported: {self.imported}, updated: {self.updated}, "
            f"unchanged: {self.unchanged}, rejected: {len(self.rejected)}"
        )
        return [summary, *(f"line {line}: rejected: {reason}" for line, reason in self.rejected)]


def read_rows(data: bytes) -> list[CsvRow]:
    """Every non-empty row of a UTF-8 CSV file after its header; raise ``LegacyFileError`` for a
    file that is not such a CSV at all (then nothing may be imported)."""
    try:
        text = data.decode("utf-8-sig")  # a BOM, as spreadsheet programs write, is allowed
    except UnicodeDecodeError as error:
        raise LegacyFileError(f"not UTF-8 text (byte {error.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[CsvRow] = []
    try:
        header = next(reader, None)
        check_header(header)
        start = reader.line_num + 1
        for cells in reader:
            if any(c.strip() for c in cells):
                rows.append(CsvRow(line=start, cells=cells))
            start = reader.line_num + 1
    except csv.Error as error:
        raise LegacyFileError(f"line {reader.line_num}: malformed CSV: {error}") from None
    return rows


def check_header(header: list[str] | None) -> None:
    """Exactly the documented columns in their order: a file of another export is refused."""
    if header is None:
        raise LegacyFileError("empty file: a header row is required")
    if [h.strip() for h in header] != list(COLUMNS):
        raise LegacyFileError(f"line 1: the header must be: {','.join(COLUMNS)}")


def parse_row(row: CsvRow, *, client_types: Mapping[str, list[str]]) -> LegacyEntry:
    """Validate one row; ``client_types`` maps each client id to the org types it allows."""
    if len(row.cells) != len(COLUMNS):
        raise RowRejectedError(f"expected {len(COLUMNS)} fields, found {len(row.cells)}")
    values = dict(zip(COLUMNS, (c.strip() for c in row.cells), strict=True))
    client_id, uscc = values["client_id"], values["uscc"].upper()
    if client_id not in client_types:
        raise RowRejectedError(f"unknown client_id {client_id!r}")
    if not is_valid_uscc(uscc):
        raise RowRejectedError(f"invalid USCC {values['uscc']!r}")
    if values["org_type"] not in {t.value for t in OrgType}:
        raise RowRejectedError(f"unknown org_type {values['org_type']!r}")
    if values["org_type"] not in client_types[client_id]:
        raise RowRejectedError(f"client {client_id!r} does not allow org_type {values['org_type']}")
    ref = values["legacy_account"]
    if not ref or len(ref) > ACCOUNT_REF_MAX_LENGTH:
        raise RowRejectedError(f"legacy_account must be 1 to {ACCOUNT_REF_MAX_LENGTH} characters")
    kind, secret = parse_secret(totp=values["totp_secret"], key=values["legacy_key"])
    return LegacyEntry(
        client_id=client_id,
        uscc=uscc,
        org_type=OrgType(values["org_type"]),
        account_ref=ref,
        secret_kind=kind,
        secret=secret,
    )


def parse_secret(*, totp: str, key: str) -> tuple[str, str]:
    """("totp", normalised base32 seed) or ("key", the key)."""
    if bool(totp) == bool(key):
        raise RowRejectedError("exactly one of totp_secret and legacy_key must be filled")
    if totp:
        return "totp", normalise_totp_secret(totp)
    if len(key) > KEY_MAX_LENGTH:
        raise RowRejectedError(f"legacy_key longer than {KEY_MAX_LENGTH} characters")
    if not key.isprintable():
        raise RowRejectedError("legacy_key contains control characters")
    return "key", key


def normalise_totp_secret(value: str) -> str:
    """Upper case, no spaces or padding; refuse what does not decode as base32 or is short."""
    secret = value.replace(" ", "").upper().rstrip("=")
    try:
        base64.b32decode(secret + "=" * (-len(secret) % 8))
    except (binascii.Error, ValueError):
        raise RowRejectedError("totp_secret is not valid base32") from None
    if len(secret) < TOTP_MIN_LENGTH:
        raise RowRejectedError(f"totp_secret shorter than {TOTP_MIN_LENGTH} characters")
    return secret


def import_file(session: Session, data: bytes, *, actor: str = "cli") -> ImportReport:
    """Import a legacy-account file: each valid row is imported, updated or left unchanged;
    each invalid row is rejected with its reason. A malformed file imports nothing.
    ``idp legacy import`` and the console's upload (``actor``: the platform admin) share it."""
    rows = read_rows(data)
    report = import_rows(session, rows)
    audit.record(
        IMPORTED,
        actor=actor,
        details={
            "imported": str(report.imported),
            "updated": str(report.updated),
            "unchanged": str(report.unchanged),
            "rejected": str(len(report.rejected)),
        },
    )
    return report


def import_rows(session: Session, rows: Iterable[CsvRow]) -> ImportReport:
    """Validate and store each row; a rejected row does not stop the others."""
    client_types = {c.client_id: c.org_types for c in list_clients(session)}
    report = ImportReport()
    seen: dict[tuple[str, str], int] = {}
    for row in rows:
        try:
            entry = parse_row(row, client_types=client_types)
            first = seen.setdefault((entry.client_id, entry.account_ref), row.line)
            if first != row.line:
                raise RowRejectedError(f"duplicate of line {first}")
            outcome = store_entry(session, entry)
        except RowRejectedError as error:
            report.rejected.append((row.line, str(error)))
            continue
        setattr(report, outcome, getattr(report, outcome) + 1)
    return report


def store_entry(session: Session, entry: LegacyEntry) -> str:
    """Insert or update one account; "imported", "updated" or "unchanged"."""
    account = find_legacy_account(session, client_id=entry.client_id, ref=entry.account_ref)
    if account is not None and same_as(account, entry):
        return "unchanged"
    if account is not None and account.bound_identity_id is not None:
        raise RowRejectedError("legacy account is already bound; it cannot change")
    sealed = seal(entry.secret)
    if account is None:
        account = LegacyAccount(client_id=entry.client_id, account_ref=entry.account_ref)
        session.add(account)
    account.uscc, account.org_type = entry.uscc, entry.org_type
    account.secret_kind, account.secret_sealed = entry.secret_kind, sealed
    return "imported" if account.id is None else "updated"


def same_as(account: LegacyAccount, entry: LegacyEntry) -> bool:
    """Whether re-importing ``entry`` would change nothing (the secret compared unsealed)."""
    return (
        account.uscc == entry.uscc
        and account.org_type == entry.org_type
        and account.secret_kind == entry.secret_kind
        and hmac.compare_digest(unseal(account.secret_sealed).encode(), entry.secret.encode())
    )
