"""The ``idp`` command: operations that operators script against. Each command prints a clear
error and changes nothing on bad input."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup, FlaskGroup

from idp import db, web
from idp.config import ConfigError, Settings, settings
from idp.errors import IdpError, NotFoundError
from idp.identity.models import ORG_TYPES


def create_cli_app() -> Any:
    """The provider for a command line: a configuration error is a clean message, exit 2."""
    from idp import create_app

    try:
        return create_app(Settings.from_env())
    except ConfigError as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(2)


def command_group(name: str, *, help_text: str) -> FlaskGroup:
    """A command whose subcommands run inside the provider's app (settings from ``IDP_*``)."""
    return FlaskGroup(
        name=name,
        create_app=create_cli_app,
        add_default_commands=False,
        add_version_option=False,
        load_dotenv=False,
        help=help_text,
    )


main = command_group("idp", help_text="统一认证登录平台 (OpenID Connect provider) operations.")
CLI_ACTOR = "cli"  # how audit events name the command line


def fail_on_idp_error(func: Any) -> Any:
    """Turn a domain error into a clean CLI error after rolling back (nothing changes)."""
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            result = func(*args, **kwargs)
            db.session().commit()
            return result
        except IdpError as error:
            web.rollback()  # the refusal's audit events stay
            db.session().commit()
            raise click.ClickException(str(error.message)) from None

    return wrapper


def parse_json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise click.ClickException(f"--json is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise click.ClickException("--json must be a JSON object")
    return value


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True))


# --- db ------------------------------------------------------------------------------------------

db_cli = AppGroup("db", help="Database schema (Alembic migrations).")


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Migrate the database to REVISION (default: head)."""
    from idp.migrate import upgrade

    upgrade(settings().database_url, revision)
    click.echo(f"database at {revision}")


@db_cli.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Migrate the database down to REVISION."""
    from idp.migrate import downgrade

    downgrade(settings().database_url, revision)
    click.echo(f"database at {revision}")


# --- clients -------------------------------------------------------------------------------------

clients_cli = AppGroup("clients", help="Relying parties (OAuth clients).")


@clients_cli.command("add")
@click.option("--json", "metadata", required=True, help="RFC 7591 client metadata as JSON.")
@fail_on_idp_error
def clients_add(metadata: str) -> None:
    """Register a client; prints it with its secret (shown only once) as JSON."""
    from idp.oidc.clients import client_info, register_client

    raw = parse_json(metadata)
    client, secret = register_client(db.session(), raw)
    db.session().commit()
    warn_unknown_metadata(raw)
    echo_json(client_info(client, secret))


def warn_unknown_metadata(raw: dict[str, Any]) -> None:
    """RFC 7591 §2: fields no specification defines are ignored; say which, in case of a typo."""
    from idp.oidc.clients import unknown_metadata

    for name in unknown_metadata(raw):
        click.echo(f"Warning: unknown client metadata {name!r} ignored", err=True)


@clients_cli.command("list")
def clients_list() -> None:
    """List clients as JSON."""
    from idp.oidc.clients import client_info, list_clients

    echo_json([client_info(c) for c in list_clients(db.session())])


@clients_cli.command("show")
@click.argument("client_id")
@fail_on_idp_error
def clients_show(client_id: str) -> None:
    """Show one client (never its secret)."""
    from idp.oidc.clients import client_info, get_client

    echo_json(client_info(get_client(db.session(), client_id)))


@clients_cli.command("update")
@click.argument("client_id")
@click.option("--json", "changes", required=True, help="Metadata fields to change, as JSON.")
@fail_on_idp_error
def clients_update(client_id: str, changes: str) -> None:
    """Change a client's metadata."""
    from idp.oidc.clients import client_info, update_client

    raw = parse_json(changes)
    client = update_client(db.session(), client_id, raw)
    warn_unknown_metadata(raw)
    echo_json(client_info(client))


@clients_cli.command("rotate-secret")
@click.argument("client_id")
@fail_on_idp_error
def clients_rotate_secret(client_id: str) -> None:
    """Issue a new secret (the old one stops working at once)."""
    from idp.oidc.clients import client_info, rotate_secret

    client, secret = rotate_secret(db.session(), client_id)
    echo_json(client_info(client, secret))


@clients_cli.command("remove")
@click.argument("client_id")
@fail_on_idp_error
def clients_remove(client_id: str) -> None:
    """Remove a client and its tokens."""
    from idp.oidc.clients import remove_client

    remove_client(db.session(), client_id)
    click.echo(f"removed {client_id}")


@clients_cli.group("initial-token")
def initial_token_cli() -> None:
    """Initial access tokens for dynamic client registration (RFC 7591, POST /oauth/register)."""


@initial_token_cli.command("issue")
@click.option("--label", required=True, help="What the token is for (who registers with it).")
@click.option("--days", type=int, default=7, show_default=True, help="Valid for this many days.")
@click.option("--max-uses", type=int, default=None, help="Registrations allowed (default: any).")
@fail_on_idp_error
def initial_token_issue(label: str, days: int, max_uses: int | None) -> None:
    """Issue a token; prints it with its value (shown only once) as JSON."""
    from idp.oidc.registration import initial_token_info, issue_initial_token

    token, value = issue_initial_token(
        db.session(), label=label, days=days, max_uses=max_uses, actor="platform"
    )
    echo_json({**initial_token_info(token), "token": value})


@initial_token_cli.command("list")
def initial_token_list() -> None:
    """List the tokens with their state (never their values) as JSON, newest first."""
    from idp.oidc.registration import initial_token_info, list_initial_tokens

    echo_json([initial_token_info(t) for t in list_initial_tokens(db.session())])


@initial_token_cli.command("revoke")
@click.argument("token_id", type=int)
@fail_on_idp_error
def initial_token_revoke(token_id: int) -> None:
    """Revoke a token: no registration with it any more (its clients stay)."""
    from idp.oidc.registration import revoke_initial_token

    revoke_initial_token(db.session(), token_id, actor="platform")
    click.echo(f"revoked initial access token {token_id}")


# --- organisations and operators -----------------------------------------------------------------

orgs_cli = AppGroup("orgs", help="Organisations.")


@orgs_cli.command("add")
@click.option("--uscc", required=True, help="Unified social credit code (18 characters).")
@click.option("--name", required=True)
@click.option(
    "--type",
    "org_type",
    required=True,
    type=click.Choice(ORG_TYPES),
)
@fail_on_idp_error
def orgs_add(uscc: str, name: str, org_type: str) -> None:
    """Add an organisation (or another identity to an existing one)."""
    from idp.orgs.registration import add_org

    org = add_org(db.session(), uscc=uscc, name=name, org_type=org_type)
    echo_json(
        {
            "id": org.id,
            "uscc": org.uscc,
            "name": org.name,
            "types": [i.org_type.value for i in org.identities],
        }
    )


@orgs_cli.command("list")
@click.option("--search", default="", help="Part of the USCC or of the name.")
@click.option("--page", default=1, show_default=True, type=click.IntRange(1, 100_000))
@fail_on_idp_error
def orgs_list(search: str, page: int) -> None:
    """List organisations as JSON, newest first, 100 a page."""
    from idp.orgs.directory import search_orgs
    from idp.pagination import MAX_PER_PAGE

    found = search_orgs(db.session(), query=search, page=page, per_page=MAX_PER_PAGE)
    echo_json(
        {
            "page": found.page,
            "pages": found.pages,
            "total": found.total,
            "organisations": [org.to_json() for org in found.items],
        }
    )


@orgs_cli.command("show")
@click.argument("uscc")
@fail_on_idp_error
def orgs_show(uscc: str) -> None:
    """Show one organisation as JSON: state, identities and registrations, operators (phones
    masked), certificates seen, legacy accounts (never their secrets)."""
    from idp.orgs.directory import org_detail

    echo_json(org_detail(db.session(), uscc).to_json())


@orgs_cli.command("suspend")
@click.argument("uscc")
@click.option("--reason", required=True, help="Why (recorded with the audit event).")
@fail_on_idp_error
def orgs_suspend(uscc: str, reason: str) -> None:
    """Suspend an organisation: every login session, code and token of its admin and its
    operators ends now, relying parties are told (back-channel logout), and nobody logs in
    for it until it is reactivated."""
    from idp.orgs.suspension import suspend_org

    done = suspend_org(db.session(), uscc, reason=reason, actor=CLI_ACTOR)
    click.echo(
        f"suspended {done.org.uscc}: {done.tokens_revoked} tokens revoked, "
        f"{done.notices_queued} back-channel logout notices queued"
    )


@orgs_cli.command("reactivate")
@click.argument("uscc")
@click.option("--reason", default="", help="Optional note for the audit event.")
@fail_on_idp_error
def orgs_reactivate(uscc: str, reason: str) -> None:
    """Lift a suspension: the organisation's admin and operators may log in again."""
    from idp.orgs.suspension import reactivate_org

    done = reactivate_org(db.session(), uscc, reason=reason, actor=CLI_ACTOR)
    click.echo(f"reactivated {done.org.uscc}")


operators_cli = AppGroup("operators", help="Operator accounts.")


@operators_cli.command("add")
@click.option("--org", "uscc", required=True, help="USCC of the organisation.")
@click.option("--name", required=True, help="Name as on the ID card.")
@click.option("--phone", required=True)
@click.option(
    "--password", default=None, help="Initial password; without it a random one is sent by SMS."
)
@fail_on_idp_error
def operators_add(uscc: str, name: str, phone: str, password: str | None) -> None:
    """Add an operator; the first login forces a password change either way."""
    from idp.identity.lookup import find_org
    from idp.orgs.operators import add_operator_for_platform

    org = find_org(db.session(), uscc)
    if org is None:
        raise NotFoundError(f"no organisation with USCC {uscc}")
    added = add_operator_for_platform(db.session(), org, name=name, phone=phone, password=password)
    echo_json(
        {
            "account_id": added.account_id,
            "phone": added.operator.phone,
            "org": org.uscc,
            "initial_password_sent": added.initial_password_sent,
        }
    )


# --- platform admins -----------------------------------------------------------------------------

admins_cli = AppGroup("admins", help="Platform admins (the /admin/ console).")


@admins_cli.command("add")
@click.argument("username")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="Asked for when not given (not echoed); the password policy applies.",
)
@fail_on_idp_error
def admins_add(username: str, password: str) -> None:
    """Add a platform admin; the authenticator (TOTP) is bound at the first login."""
    from idp.admin.accounts import add_admin

    admin = add_admin(db.session(), username=username, password=password, actor=CLI_ACTOR)
    click.echo(f"platform admin {admin.username} added; bind the authenticator at /admin/login")


@admins_cli.command("remove")
@click.argument("username")
@fail_on_idp_error
def admins_remove(username: str) -> None:
    """Remove a platform admin; their console sessions end at their next request."""
    from idp.admin.accounts import remove_admin

    remove_admin(db.session(), username=username, actor=CLI_ACTOR)
    click.echo(f"platform admin {username} removed")


@admins_cli.command("list")
def admins_list() -> None:
    """The platform admins as JSON (username, authenticator bound, recovery codes left)."""
    from idp.admin.accounts import list_admins

    echo_json(
        [
            {
                "username": admin.username,
                "totp_bound": admin.totp_confirmed,
                "recovery_codes_left": len(admin.recovery_codes),
                "last_login_at": admin.last_login_at.isoformat() if admin.last_login_at else None,
                "created_at": admin.created_at.isoformat(),
            }
            for admin in list_admins(db.session())
        ]
    )


# --- configuration check -----------------------------------------------------------------------


@main.command("check", with_appcontext=False)
def check() -> None:
    """Check the configuration from IDP_* as the provider does at start. In production mode
    (IDP_DEV_MODE=0) also refuse development secrets, SQLite, the SQL store and unreadable key
    material. Prints each problem with the variable to set; exit status 1 when there is any."""
    try:
        checked = Settings.read_env()
    except ConfigError as error:  # a value that does not even parse
        report_problems(str(error).splitlines())
    report_problems(configuration_problems(checked))
    mode = "development mode" if checked.dev_mode else "production mode"
    click.echo(f"configuration ok ({mode})")


def configuration_problems(checked: Settings) -> list[str]:
    """The doctor's problems, else whatever else stops the provider from being built."""
    from idp import create_app
    from idp.ops.doctor import problems

    found = problems(checked)
    if found:
        return found
    try:
        app = create_app(checked)
    except ConfigError as error:
        return str(error).splitlines()
    app.extensions["idp.keys"].close()
    db.dispose(app)
    return []


def report_problems(found: list[str]) -> None:
    """One problem per line on stdout, then exit status 1; nothing when there is none."""
    for problem in found:
        click.echo(problem)
    if found:
        count = f"{len(found)} problem" + ("s" if len(found) > 1 else "")
        raise click.ClickException(f"{count}: fix them before running the provider")


# --- serving ------------------------------------------------------------------------------------


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    """Run the development server (production: ``idp-serve``)."""
    from werkzeug.serving import run_simple

    from idp.config import is_loopback_host

    if settings().dev_mode and not is_loopback_host(host):
        raise click.ClickException(
            f"--host {host}: development mode serves this machine only (a loopback address); "
            "set IDP_DEV_MODE=0 and a production configuration to serve others"
        )

    # Not app.run(): Flask ignores it inside its own CLI.
    run_simple(host, port, current_app._get_current_object(), threaded=True)  # type: ignore[attr-defined]


IDLE_POLL_SECONDS = 0.5

sms_cli = AppGroup("sms", help="SMS delivery (the queue and the worker's outcomes).")


@sms_cli.command("status")
@click.option("--hours", default=24, show_default=True, type=click.IntRange(1, 24 * 90))
def sms_status(hours: int) -> None:
    """What waits in the queue, and the delivery outcomes of the last HOURS, as JSON."""
    from datetime import timedelta

    from idp.audit.queries import count_outcomes
    from idp.auth.sms_delivery import OUTCOMES
    from idp.db import utcnow
    from idp.sms.queue import queue

    since = utcnow() - timedelta(hours=hours)
    echo_json(
        {
            "queued": queue().pending_count(),
            "waiting_to_retry": queue().scheduled_count(),
            "since": since.isoformat(timespec="seconds"),
            "outcomes": count_outcomes(db.session(), OUTCOMES, since=since),
        }
    )


@main.command("worker")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
def worker(workers: int) -> None:
    """Deliver queued SMS (login and join codes, notices, rejections), with retries.

    Run one or more beside the web workers; each message is delivered by one of them. An idle
    worker looks at the queue at least every half second (on Redis it is woken at once).
    SIGINT stops after the running deliveries, SIGTERM at once."""
    import logging

    from idp.sms.queue import queue

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    consumer = queue().create_consumer(
        workers=workers, periodic=False, worker_type="thread", max_delay=IDLE_POLL_SECONDS
    )
    consumer.run()


def register() -> None:
    from idp.orgs.cli import legacy_cli
    from idp.signing.cli import keys_cli

    for group in (
        db_cli,
        keys_cli,
        clients_cli,
        orgs_cli,
        operators_cli,
        legacy_cli,
        sms_cli,
        admins_cli,
    ):
        main.add_command(group)


register()


if __name__ == "__main__":
    main()
