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
from idp.signing.interface import (
    ALGORITHMS,
    KeyMaterialError,
    KeyRef,
    KeyState,
    KeyStore,
    KeyStoreUnavailableError,
    NoSigningKeyError,
)

keys_cli = AppGroup("keys", help="Manage the signing keys of ID tokens and the published JWKS.")

alg_option = click.option(
    "--alg",
    type=click.Choice(ALGORITHMS, case_sensitive=False),
    default="ES256",
    show_default=True,
    help="JOSE signing algorithm.",
)

immediately_option = click.option(
    "--immediately",
    is_flag=True,
    help="Make the next key sign now, even if relying parties may not have fetched it yet "
    "(e.g. the active key is compromised); their verification fails until they refetch.",
)


@contextlib.contextmanager
def _clear_errors() -> Iterator[None]:
    """Refusals from the store become a one-line message on stderr and exit status 1."""
    try:
        yield
    except KeyError as error:
        raise click.ClickException(str(error.args[0]) if error.args else "unknown key") from error
    except (ValueError, NoSigningKeyError, KeyMaterialError) as error:
        raise click.ClickException(str(error)) from error
    except KeyStoreUnavailableError as error:
        raise click.ClickException(f"{error.message} ({error.detail})") from error


@keys_cli.command("generate")
@alg_option
def generate(alg: str) -> None:
    """Create the active key for ALG, or the next key if an active one exists. Prints the kid."""
    store = key_store()
    with _clear_errors():
        state: KeyState = "next" if _kids(store, alg=alg, state="active") else "active"
        ref = store.generate(alg, state=state)
    click.echo(ref.kid)


@keys_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_keys(as_json: bool) -> None:
    """List every key, newest first."""
    with _clear_errors():
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
@immediately_option
def rotate(alg: str, immediately: bool) -> None:
    """Make the next key of ALG active once relying parties have had the JWKS cache lifetime to
    fetch it, retire the active one and publish a new next key. Without a next key, publish one
    and say when to run rotate again."""
    store = key_store()
    with _clear_errors():
        before = _kids(store, alg=alg, state="active")
        active = store.rotate(alg, immediately=immediately)
    upcoming = _refs(store, alg=alg, state="next")
    click.echo(f"active {active.kid}")
    click.echo(f"next   {upcoming[0].kid if upcoming else '-'}")
    if upcoming and before == [active.kid]:
        signs_from = store.signs_from(upcoming[0]).isoformat(timespec="seconds")
        click.echo(
            f"The active key is unchanged: the next key was published now. Run "
            f"'idp keys rotate --alg {alg}' again from {signs_from} to make it active."
        )


# A kid is base64url and may start with "-": take it as an argument, never as an option.
@keys_cli.command("retire", context_settings={"ignore_unknown_options": True})
@click.argument("kid")
@immediately_option
def retire(kid: str, immediately: bool) -> None:
    """Retire KID; it stays in the JWKS for the retention period so issued tokens still verify.
    Retiring the active key makes the next key active, once relying parties could fetch it."""
    with _clear_errors():
        ref = key_store().retire(kid, immediately=immediately)
    click.echo(f"retired {ref.kid}")


def _refs(store: KeyStore, *, alg: str, state: KeyState) -> list[KeyRef]:
    refs = store.keys()  # a KeyStore method, not dict.keys()
    return [ref for ref in refs if ref.alg == alg and ref.state == state]


def _kids(store: KeyStore, *, alg: str, state: KeyState) -> list[str]:
    return [ref.kid for ref in _refs(store, alg=alg, state=state)]


def _as_dict(ref: KeyRef) -> dict[str, str | None]:
    retired = ref.retired_at.isoformat(timespec="seconds") if ref.retired_at else None
    return {
        "kid": ref.kid,
        "alg": ref.alg,
        "state": ref.state,
        "created_at": ref.created_at.isoformat(timespec="seconds"),
        "retired_at": retired,
    }
