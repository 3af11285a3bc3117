"""``idp keys``: create, list, rotate and retire signing keys of the configured store.

Commands run inside the app context (``AppGroup``) so they act on the same store the server
uses; a running server notices the change without a restart.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import click
from flask.cli import AppGroup

from idp.signing import key_store
from idp.signing.files import ALGORITHMS
from idp.signing.interface import KeyRef, KeyState, KeyStore, NoSigningKeyError

keys_cli = AppGroup("keys", help="Manage the signing keys of ID tokens and the published JWKS.")

alg_option = click.option(
    "--alg",
    type=click.Choice(ALGORITHMS, case_sensitive=False),
    default="ES256",
    show_default=True,
    help="JOSE signing algorithm.",
)


@contextlib.contextmanager
def _clear_errors() -> Iterator[None]:
    """Refusals from the store become a one-line message on stderr and exit status 1."""
    try:
        yield
    except KeyError as error:
        raise click.ClickException(str(error.args[0]) if error.args else "unknown key") from error
    except (ValueError, NoSigningKeyError) as error:
        raise click.ClickException(str(error)) from error


@keys_cli.command("generate")
@alg_option
def generate(alg: str) -> None:
    """Create the active key for ALG, or the next key if an active one exists. Prints the kid."""
    store = key_store()
    state: KeyState = "next" if _kids(store, alg=alg, state="active") else "active"
    with _clear_errors():
        ref = store.generate(alg, state=state)
    click.echo(ref.kid)


@keys_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_keys(as_json: bool) -> None:
    """List every key, newest first."""
    refs = key_store().keys()
    if as_json:
        click.echo(json.dumps([_as_dict(ref) for ref in refs], indent=2))
        return
    click.echo(f"{'KID':<43}  {'ALG':<5}  {'STATE':<7}  {'CREATED':<25}  RETIRED")
    for ref in refs:
        row = _as_dict(ref)
        click.echo(
            f"{ref.kid:<43}  {ref.alg:<5}  {ref.state:<7}  {row['created_at']:<25}  {row['retired_at'] or '-'}"
        )


@keys_cli.command("rotate")
@alg_option
def rotate(alg: str) -> None:
    """Make the next key of ALG active, retire the active one and prepare a new next key."""
    store = key_store()
    with _clear_errors():
        active = store.rotate(alg)
    upcoming = _kids(store, alg=alg, state="next")
    click.echo(f"active {active.kid}")
    click.echo(f"next   {upcoming[0] if upcoming else '-'}")


# A kid is base64url and may start with "-": take it as an argument, never as an option.
@keys_cli.command("retire", context_settings={"ignore_unknown_options": True})
@click.argument("kid")
def retire(kid: str) -> None:
    """Retire KID; it stays in the JWKS for the retention period so issued tokens still verify."""
    with _clear_errors():
        ref = key_store().retire(kid)
    click.echo(f"retired {ref.kid}")


def _kids(store: KeyStore, *, alg: str, state: KeyState) -> list[str]:
    refs = store.keys()  # a KeyStore method, not dict.keys()
    return [ref.kid for ref in refs if ref.alg == alg and ref.state == state]


def _as_dict(ref: KeyRef) -> dict[str, str | None]:
    retired = ref.retired_at.isoformat(timespec="seconds") if ref.retired_at else None
    return {
        "kid": ref.kid,
        "alg": ref.alg,
        "state": ref.state,
        "created_at": ref.created_at.isoformat(timespec="seconds"),
        "retired_at": retired,
    }
