"""Reading and validating the legacy-account import file, without the app: file-level errors
(nothing may be imported) against row-level rejections (reported, the rest imported)."""

from __future__ import annotations

import pytest

from idp.identity.models import OrgType
from idp.orgs.legacy import (
    CsvRow,
    LegacyFileError,
    RowRejectedError,
    normalise_totp_secret,
    parse_row,
    read_rows,
)

HEADER = b"client_id,uscc,org_type,legacy_account,totp_secret,legacy_key\r\n"
USCC = "91310000MA1K000019"
SECRET = "JBSWY3DPEHPK3PXP"
CLIENTS = {"fund": ["audit", "cost_consulting", "bookkeeping"], "audit-only": ["audit"]}


def row(*cells: str, line: int = 2) -> CsvRow:
    return CsvRow(line=line, cells=list(cells))


def test_rows_carry_the_line_they_start_on():
    data = HEADER + b'fund,U,audit,A,S,\r\n\r\nfund,U,audit,"B\r\nC",S,\r\nfund,U,audit,D,S,\r\n'

    rows = read_rows(data)

    assert [(r.line, r.cells[3]) for r in rows] == [(2, "A"), (4, "B\r\nC"), (6, "D")]


def test_header_cells_may_be_padded_but_not_reordered():
    assert read_rows(b" client_id , uscc,org_type,legacy_account,totp_secret,legacy_key\n") == []
    with pytest.raises(LegacyFileError):
        read_rows(b"uscc,client_id,org_type,legacy_account,totp_secret,legacy_key\n")


@pytest.mark.parametrize(
    "data", [b"", b"\xff\xfe", HEADER + b'fund,"x"y,audit,A,S,\n', HEADER + b'fund,"x']
)
def test_a_file_that_is_no_such_csv_is_refused_whole(data):
    with pytest.raises(LegacyFileError):
        read_rows(data)


def test_a_valid_totp_row():
    entry = parse_row(row("fund", USCC.lower(), "audit", "A-1", SECRET, ""), client_types=CLIENTS)

    assert (entry.client_id, entry.uscc, entry.org_type) == ("fund", USCC, OrgType.AUDIT)
    assert (entry.account_ref, entry.secret_kind, entry.secret) == ("A-1", "totp", SECRET)


def test_a_valid_key_row_keeps_inner_spaces_of_the_key():
    entry = parse_row(row("fund", USCC, "audit", "A-1", "", " my key 1 "), client_types=CLIENTS)

    assert (entry.secret_kind, entry.secret) == ("key", "my key 1")


@pytest.mark.parametrize(
    ("cells", "reason"),
    [
        (("x", USCC, "audit", "A", SECRET, ""), "unknown client_id 'x'"),
        (("fund", "91310000MA1K00001", "audit", "A", SECRET, ""), "invalid USCC"),
        (("fund", USCC, "AUDIT", "A", SECRET, ""), "unknown org_type 'AUDIT'"),
        (("audit-only", USCC, "bookkeeping", "A", SECRET, ""), "does not allow org_type"),
        (("fund", USCC, "audit", "A" * 101, SECRET, ""), "legacy_account must be"),
        (("fund", USCC, "audit", "A", SECRET, "k"), "exactly one of"),
        (("fund", USCC, "audit", "A", "", "   "), "exactly one of"),
        (("fund", USCC, "audit", "A", "", "k" * 201), "longer than 200"),
        (("fund", USCC, "audit", "A", "", "a\tb"), "control characters"),
        (("fund", USCC, "audit", "A", SECRET), "expected 6 fields, found 5"),
    ],
)
def test_invalid_rows_are_rejected_with_a_reason(cells, reason):
    with pytest.raises(RowRejectedError, match=reason):
        parse_row(row(*cells), client_types=CLIENTS)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (SECRET, SECRET),
        (SECRET.lower(), SECRET),
        ("JBSW Y3DP EHPK 3PXP", SECRET),
        ("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"),
        ("JBSWY3DPEHPK3PXPJA======", "JBSWY3DPEHPK3PXPJA"),
    ],
)
def test_totp_secrets_are_normalised(given, stored):
    assert normalise_totp_secret(given) == stored


@pytest.mark.parametrize(
    "given", ["JBSWY3DPEHPK3PX", "JBSWY3DPEHPK3PX1", "JBSWY3DPEHPK3PX!", "JBSWY3DPEHPK3PXPJ"]
)
def test_short_or_non_base32_secrets_are_refused(given):
    with pytest.raises(RowRejectedError):
        normalise_totp_secret(given)
