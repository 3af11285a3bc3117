"""Secrets at rest (OTP seeds, legacy keys): sealed with Fernet (AES-128-CBC + HMAC-SHA256)
under ``IDP_DATA_KEY``, so a database dump alone does not reveal them."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken

from idp.config import settings


class SealError(RuntimeError):
    """A sealed value could not be opened: wrong ``IDP_DATA_KEY`` or a damaged value."""


def _fernet() -> Fernet:
    return Fernet(settings().data_key.encode())


def seal(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode("ascii")


def unseal(sealed: str) -> str:
    try:
        return _fernet().decrypt(sealed.encode("ascii")).decode()
    except (InvalidToken, ValueError) as error:
        raise SealError("cannot open a sealed secret (check IDP_DATA_KEY)") from error
