"""``idp legacy import FILE.csv``: legacy accounts from a relying party's export, secrets sealed
at rest, idempotent re-import, a report with a reason for every rejected row, and nothing
imported from a file that is not a readable CSV.

Each invocation runs in an empty ``contextvars`` context, as a separate ``idp`` process would
(see tests/integration/test_cli.py)."""

from __future__ import annotations

import contextvars

import pytest
from flask import current_app
from sqlalchemy import select

from idp import db
from idp.orgs.cli import legacy_cli
from tests.conftest import DEMO_USCC, OTHER_USCC
from tests.integration.orgs.helpers import LEGACY_KEY, TOTP_SECRET, audit_events, count

HEADER = "client_id,uscc,org_type,legacy_account,totp_secret,legacy_key"


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def write(tmp_path):
    def write(*lines, name="accounts.csv", raw=None):
        path = tmp_path / name
        if raw is not None:
            path.write_bytes(raw)
        else:
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return str(path)

    return write


def run(runner, path):
    return contextvars.Context().run(runner.invoke, legacy_cli, ["import", path])


def good_rows(fund, secret=TOTP_SECRET, key=LEGACY_KEY):
    return [
        HEADER,
        f"{fund.client_id},{DEMO_USCC},cost_consulting,WXZJ-0001,{secret},",
        f"{fund.client_id},{OTHER_USCC},audit,WXZJ-0002,,{key}",
    ]


def accounts():
    from idp.identity.models import LegacyAccount

    with current_app.extensions["idp.db"]() as session:
        return {
            a.account_ref: a
            for a in session.scalars(select(LegacyAccount).order_by(LegacyAccount.id))
        }


def test_a_good_file_is_imported_with_sealed_secrets(runner, write, fund):
    from idp.sealing import unseal

    result = run(runner, write(*good_rows(fund)))

    assert result.exit_code == 0, result.output
    assert result.stdout == "imported: 2, updated: 0, unchanged: 0, rejected: 0\n"
    stored = accounts()
    totp, key = stored["WXZJ-0001"], stored["WXZJ-0002"]
    assert (totp.client_id, totp.uscc, totp.org_type, totp.secret_kind) == (
        fund.client_id,
        DEMO_USCC,
        "cost_consulting",
        "totp",
    )
    assert (key.uscc, key.org_type, key.secret_kind) == (OTHER_USCC, "audit", "key")
    assert TOTP_SECRET not in totp.secret_sealed
    assert LEGACY_KEY not in key.secret_sealed
    assert unseal(totp.secret_sealed) == TOTP_SECRET
    assert unseal(key.secret_sealed) == LEGACY_KEY
    assert (totp.bound_identity_id, key.bound_identity_id) == (None, None)
    assert audit_events("orgs.legacy_imported") == [
        ("cli", "success", {"imported": "2", "updated": "0", "unchanged": "0", "rejected": "0"})
    ]


def test_the_secrets_are_not_in_the_database_file(runner, write, fund, settings):
    run(runner, write(*good_rows(fund)))
    db.dispose(current_app)  # checkpoint the WAL into the file

    raw = open(settings.database_url.removeprefix("sqlite:///"), "rb").read()  # noqa: SIM115

    assert TOTP_SECRET.encode() not in raw
    assert LEGACY_KEY.encode() not in raw


def test_re_import_is_idempotent(runner, write, fund):
    path = write(*good_rows(fund))
    run(runner, path)
    sealed = {ref: a.secret_sealed for ref, a in accounts().items()}

    again = run(runner, path)

    assert again.exit_code == 0
    assert again.stdout == "imported: 0, updated: 0, unchanged: 2, rejected: 0\n"
    assert {ref: a.secret_sealed for ref, a in accounts().items()} == sealed


def test_a_totp_secret_is_normalised(runner, write, fund):
    from idp.sealing import unseal

    spaced = " ".join(TOTP_SECRET.lower()[i : i + 4] for i in range(0, 32, 4))
    path = write(HEADER, f"{fund.client_id},{DEMO_USCC.lower()},audit,A-1,{spaced}====,")

    assert run(runner, path).stdout.startswith("imported: 1,")
    account = accounts()["A-1"]
    assert (account.uscc, unseal(account.secret_sealed)) == (DEMO_USCC, TOTP_SECRET)
    plain = write(HEADER, f"{fund.client_id},{DEMO_USCC},audit,A-1,{TOTP_SECRET},", name="b.csv")
    assert run(runner, plain).stdout.startswith("imported: 0, updated: 0, unchanged: 1,")


def test_a_changed_secret_is_updated(runner, write, fund):
    from idp.sealing import unseal

    run(runner, write(*good_rows(fund)))
    new_secret = "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU"

    result = run(runner, write(*good_rows(fund, secret=new_secret, key="new-key"), name="b.csv"))

    assert result.stdout == "imported: 0, updated: 2, unchanged: 0, rejected: 0\n"
    stored = accounts()
    assert unseal(stored["WXZJ-0001"].secret_sealed) == new_secret
    assert unseal(stored["WXZJ-0002"].secret_sealed) == "new-key"


def test_a_bound_account_is_not_changed(runner, write, fund, org):
    from idp.identity.models import LegacyAccount
    from idp.sealing import unseal

    path = write(*good_rows(fund))
    run(runner, path)
    with current_app.extensions["idp.db"]() as session:
        session.query(LegacyAccount).update({"bound_identity_id": org.identities[0].id})
        session.commit()

    assert run(runner, path).stdout == "imported: 0, updated: 0, unchanged: 2, rejected: 0\n"
    changed = run(runner, write(*good_rows(fund, key="new-key"), name="b.csv"))

    assert changed.exit_code == 0
    assert changed.stdout == (
        "imported: 0, updated: 0, unchanged: 1, rejected: 1\n"
        "line 3: rejected: legacy account is already bound; it cannot change\n"
    )
    assert unseal(accounts()["WXZJ-0002"].secret_sealed) == LEGACY_KEY


def test_rejected_rows_are_reported_with_their_reason(runner, write, fund, other_rp):
    c = fund.client_id
    lines = [
        HEADER,
        f"{c},{DEMO_USCC},audit,OK-1,{TOTP_SECRET},",  # 2: imported
        f"nope,{DEMO_USCC},audit,R-3,{TOTP_SECRET},",  # 3
        f"{c},91310000MA1K000018,audit,R-4,{TOTP_SECRET},",  # 4
        f"{c},{DEMO_USCC},auditor,R-5,{TOTP_SECRET},",  # 5
        f"{c},{DEMO_USCC},audit,R-6,{TOTP_SECRET},{LEGACY_KEY}",  # 6
        f"{c},{DEMO_USCC},audit,R-7,,",  # 7
        f"{c},{DEMO_USCC},audit,R-8,NOT-BASE32-1890!,",  # 8
        f"{c},{DEMO_USCC},audit,R-9,JBSWY3DPEHPK3PX,",  # 9: 15 characters
        f"{c},{DEMO_USCC},audit,R-10,,{'k' * 201}",  # 10
        f"{c},{DEMO_USCC},audit,R-11,{TOTP_SECRET}",  # 11: five fields
        "",  # 12: blank lines are skipped
        f"{c},{DEMO_USCC},bookkeeping,OK-1,,{LEGACY_KEY}",  # 13: same account as line 2
        f"{other_rp.client_id},{DEMO_USCC},bookkeeping,R-14,,{LEGACY_KEY}",  # 14
        f"{c},{DEMO_USCC},audit,,,{LEGACY_KEY}",  # 15
        f'{c},{DEMO_USCC},audit,"R-16",,"multi',  # 16-17: a quoted key over two lines
        'line key"',
        f"{c},{DEMO_USCC},audit,OK-18,,{'k' * 200}",  # 18: imported
    ]

    result = run(runner, write(*lines))

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "imported: 2, updated: 0, unchanged: 0, rejected: 13",
        "line 3: rejected: unknown client_id 'nope'",
        "line 4: rejected: invalid USCC '91310000MA1K000018'",
        "line 5: rejected: unknown org_type 'auditor'",
        "line 6: rejected: exactly one of totp_secret and legacy_key must be filled",
        "line 7: rejected: exactly one of totp_secret and legacy_key must be filled",
        "line 8: rejected: totp_secret is not valid base32",
        "line 9: rejected: totp_secret shorter than 16 characters",
        "line 10: rejected: legacy_key longer than 200 characters",
        "line 11: rejected: expected 6 fields, found 5",
        "line 13: rejected: duplicate of line 2",
        f"line 14: rejected: client '{other_rp.client_id}' does not allow org_type bookkeeping",
        "line 15: rejected: legacy_account must be 1 to 100 characters",
        "line 16: rejected: legacy_key contains control characters",
    ]
    assert sorted(accounts()) == ["OK-1", "OK-18"]
    assert audit_events("orgs.legacy_imported")[0][2]["rejected"] == "13"


MALFORMED = {
    "not UTF-8": (HEADER + "\nc,\xff\n").encode("latin-1"),
    "empty": b"",
    "another header": b"client,uscc,type,account,secret,key\n",
    "unterminated quote": (HEADER + '\nc,u,audit,A,"JBSW\n').encode(),
    "text after a quote": (HEADER + '\nc,"u"x,audit,A,S,\n').encode(),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_a_malformed_file_imports_nothing(runner, write, fund, case):
    from idp.identity.models import LegacyAccount

    good = "\n".join(good_rows(fund)) + "\n"
    data = MALFORMED[case]
    if case not in ("empty", "another header"):
        # good rows first: they must not be imported either
        data = good.encode() + data.split(b"\n", 1)[1]

    result = run(runner, write(raw=data))

    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: ")
    assert "nothing imported" in result.stderr
    assert "Traceback" not in result.output
    assert count(LegacyAccount) == 0
    assert audit_events("orgs.legacy_imported") == [("cli", "legacy_file_invalid", {})]


def test_a_missing_file_is_an_error(runner, tmp_path, fund):
    result = run(runner, str(tmp_path / "missing.csv"))

    assert result.exit_code == 1
    assert "Error: cannot read" in result.stderr


def test_a_byte_order_mark_is_accepted(runner, write, fund):
    data = ("\ufeff" + "\n".join(good_rows(fund)) + "\n").encode()

    assert run(runner, write(raw=data)).stdout.startswith("imported: 2,")


def test_the_command_is_registered_on_idp():
    from idp.cli import main

    assert main.commands["legacy"] is legacy_cli
