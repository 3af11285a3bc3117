"""``SkfSigner``: SM2 UKeys through the vendor's SKF library (GM/T 0016-2012) via ctypes.

UNTESTED WITH HARDWARE. The function prototypes, structures and return codes below follow
GM/T 0016-2012 (§6 types, §7 functions, appendix A error codes). tests/agent/test_skf.py runs
this module against a fake SKF library compiled from tests/agent/fake_skf.c (same prototypes and
structures), and checks the SM2 digest against gmalg's independent verification. Check against
the vendor's ``skf.h`` and a real token before relying on it (README, "SM2 and SKF").

Flow: ``SKF_EnumDev`` → ``SKF_ConnectDev`` → ``SKF_EnumApplication``/``SKF_OpenApplication`` →
``SKF_EnumContainer``/``SKF_OpenContainer`` → ``SKF_ExportCertificate`` (signing certificate) →
``SKF_VerifyPIN`` → ``SKF_ECCSignData`` over ``e = SM3(Z_A || M)`` computed here →
``SKF_ClearSecureState`` (log out) → close everything.
"""

from __future__ import annotations

import ctypes
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from . import certs, sm2
from .der import DerError, subject_public_key_info
from .errors import AgentError
from .interface import PayloadBuilder, SignedPayload, SigningCertificate, TokenInfo

log = logging.getLogger(__name__)

# GM/T 0016 §6.2 base types: ULONG and BOOL are 32-bit on every platform.
ULONG = ctypes.c_uint32
BOOL = ctypes.c_int32
HANDLE = ctypes.c_void_p
LPSTR = ctypes.c_char_p
BUFFER = ctypes.c_void_p

USER_TYPE = 1
CONTAINER_ECC = 2
ECC_MAX_COORDINATE_BYTES = 64  # ECC_MAX_XCOORDINATE_BITS_LEN / 8
MAX_CERTIFICATE = 16 * 1024
DEVINFO_SIZE = 1024  # the struct is about 300 bytes; a larger buffer tolerates packing variants
# DEVINFO (§6.4.3): VERSION(2) Manufacturer[64] Issuer[64] Label[32] SerialNumber[32] …
DEVINFO_FIELDS = {
    "manufacturer": (2, 66),
    "issuer": (66, 130),
    "label": (130, 162),
    "serial": (162, 194),
}

SAR_OK = 0x00000000
SAR_BUFFER_TOO_SMALL = 0x0A000020
SAR_DEVICE_REMOVED = 0x0A000023
SAR_PIN_INCORRECT = 0x0A000024
SAR_PIN_LOCKED = 0x0A000025
SAR_PIN_INVALID = 0x0A000026
SAR_PIN_LEN_RANGE = 0x0A000027


class EccSignatureBlob(ctypes.Structure):
    """ECCSIGNATUREBLOB (§6.4.8): r and s, each in a 64-byte field, right-aligned."""

    _fields_ = [
        ("r", ctypes.c_ubyte * ECC_MAX_COORDINATE_BYTES),
        ("s", ctypes.c_ubyte * ECC_MAX_COORDINATE_BYTES),
    ]


PROTOTYPES: dict[str, list[Any]] = {
    "SKF_EnumDev": [BOOL, LPSTR, ctypes.POINTER(ULONG)],
    "SKF_ConnectDev": [LPSTR, ctypes.POINTER(HANDLE)],
    "SKF_DisConnectDev": [HANDLE],
    "SKF_GetDevInfo": [HANDLE, BUFFER],
    "SKF_EnumApplication": [HANDLE, LPSTR, ctypes.POINTER(ULONG)],
    "SKF_OpenApplication": [HANDLE, LPSTR, ctypes.POINTER(HANDLE)],
    "SKF_CloseApplication": [HANDLE],
    "SKF_VerifyPIN": [HANDLE, ULONG, LPSTR, ctypes.POINTER(ULONG)],
    "SKF_ClearSecureState": [HANDLE],
    "SKF_EnumContainer": [HANDLE, LPSTR, ctypes.POINTER(ULONG)],
    "SKF_OpenContainer": [HANDLE, LPSTR, ctypes.POINTER(HANDLE)],
    "SKF_CloseContainer": [HANDLE],
    "SKF_GetContainerType": [HANDLE, ctypes.POINTER(ULONG)],
    "SKF_ExportCertificate": [HANDLE, BOOL, BUFFER, ctypes.POINTER(ULONG)],
    "SKF_ECCSignData": [HANDLE, BUFFER, ULONG, ctypes.POINTER(EccSignatureBlob)],
}


def load_library(path: str) -> Any:
    """Load an SKF library with the right calling convention (``DEVAPI`` is ``__stdcall`` on
    Windows) and declare the prototypes, so ctypes converts and checks every argument."""
    loader = getattr(ctypes, "WinDLL", None) if sys.platform == "win32" else None
    dll = (loader or ctypes.CDLL)(path)
    for name, argtypes in PROTOTYPES.items():
        function = getattr(dll, name)
        function.argtypes = argtypes
        function.restype = ULONG
    return dll


def _decode(raw: bytes) -> str:
    """Names and device fields are UTF-8, or GBK with libraries built for Chinese Windows."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("gbk", errors="replace")


def _names(raw: bytes) -> list[str]:
    """An SKF name list: strings separated by NUL, ending with two NULs."""
    return [_decode(part) for part in raw.split(b"\x00") if part]


def _field(raw: bytes) -> str:
    """A NUL-terminated fixed-size text field of DEVINFO."""
    return _decode(raw.split(b"\x00", 1)[0]).strip()


@dataclass(frozen=True)
class Located:
    """Open handles to the application and container holding the signing certificate."""

    application: Any
    container: Any
    certificate: bytes


class SkfSigner:
    """A :class:`~clients.ukey_agent.interface.TokenSigner` for SM2 over an SKF library.

    ``api`` is the library loaded by :func:`load_library` (prototypes declared).
    """

    def __init__(self, *, api: Any) -> None:
        self._api = api
        self._lock = threading.Lock()

    @classmethod
    def from_library(cls, path: str) -> SkfSigner:
        """Load the vendor's SKF library at ``path``."""
        try:
            return cls(api=load_library(path))
        except (OSError, AttributeError) as error:
            raise AgentError(
                "token_error", detail=f"cannot load SKF library {path}: {error}"
            ) from error

    def close(self) -> None:
        """Nothing is held between requests: every request connects and disconnects."""

    # --- calls ---------------------------------------------------------------------------

    def _call(self, name: str, *args: Any) -> None:
        """Call ``name``; a non-zero SAR code becomes ``token_error`` (``no_token`` if the
        device was removed). PIN codes are handled by :meth:`_verify_pin`."""
        code = getattr(self._api, name)(*args)
        if code == SAR_OK:
            return
        if code == SAR_DEVICE_REMOVED:
            raise AgentError("no_token", detail=f"{name}: SAR_DEVICE_REMOVED")
        raise AgentError("token_error", detail=f"{name} returned 0x{code:08X}")

    def _name_list(self, name: str, *handle: Any) -> list[str]:
        """The two-call pattern of SKF enumerations: ask for the size, then fill a buffer."""
        size = ULONG(0)
        self._call(name, *handle, None, ctypes.pointer(size))
        if size.value == 0:
            return []
        buffer = ctypes.create_string_buffer(size.value)
        self._call(name, *handle, buffer, ctypes.pointer(size))
        return _names(buffer.raw[: size.value])

    def _open(self, name: str, parent: Any, child: str) -> Any:
        handle = HANDLE()
        self._call(name, parent, child.encode("utf-8"), ctypes.pointer(handle))
        return handle

    # --- devices ---------------------------------------------------------------------------

    def _device_info(self, device: Any) -> dict[str, str]:
        raw = ctypes.create_string_buffer(DEVINFO_SIZE)
        self._call("SKF_GetDevInfo", device, raw)
        data = raw.raw
        return {key: _field(data[start:end]) for key, (start, end) in DEVINFO_FIELDS.items()}

    def _connect(self, name: str) -> Any:
        device = HANDLE()
        self._call("SKF_ConnectDev", name.encode("utf-8"), ctypes.pointer(device))
        return device

    def _devices(self, stack: ExitStack) -> list[tuple[Any, TokenInfo]]:
        """Connect to every present device (closed by ``stack``) with its description."""
        found = []
        for name in self._name_list("SKF_EnumDev", BOOL(1)):
            device = self._connect(name)
            stack.callback(self._api.SKF_DisConnectDev, device)
            info = self._device_info(device)
            token = TokenInfo(
                label=info["label"] or name,
                serial=info["serial"],
                manufacturer=info["manufacturer"],
                model=f"SKF {info['issuer']}".strip(),
            )
            found.append((device, token))
        return found

    def tokens(self) -> list[TokenInfo]:
        """Every device the SKF library reports present."""
        with self._lock, ExitStack() as stack:
            return [token for _device, token in self._devices(stack)]

    def _select(self, stack: ExitStack, token: str | None) -> Any:
        devices = self._devices(stack)
        if token is not None:
            devices = [(d, t) for d, t in devices if t.serial == token]
        if not devices:
            raise AgentError("no_token")
        if len(devices) > 1:
            raise AgentError("several_tokens")
        return devices[0][0]

    # --- certificate -------------------------------------------------------------------------

    def _export_certificate(self, container: Any) -> bytes | None:
        """The container's signing certificate (``bSignFlag`` TRUE), or ``None`` if it has none.
        The size is asked first; libraries that refuse a NULL buffer get a large one instead."""
        size = ULONG(0)
        code = self._api.SKF_ExportCertificate(container, BOOL(1), None, ctypes.pointer(size))
        if code not in (SAR_OK, SAR_BUFFER_TOO_SMALL) or size.value == 0:
            size = ULONG(MAX_CERTIFICATE)
        buffer = ctypes.create_string_buffer(size.value)
        code = self._api.SKF_ExportCertificate(container, BOOL(1), buffer, ctypes.pointer(size))
        if code != SAR_OK or not 0 < size.value <= len(buffer):
            return None
        return buffer.raw[: size.value]

    @staticmethod
    def _usable(der: bytes | None) -> x509.Certificate | None:
        cert = certs.load(der) if der else None
        if cert is None or not certs.is_signing_certificate(cert) or not certs.is_sm2(cert):
            return None
        return cert

    def _containers(self, stack: ExitStack, application: Any) -> Iterator[tuple[Any, bytes]]:
        """ECC containers whose signing certificate is an SM2 signing certificate."""
        for name in self._name_list("SKF_EnumContainer", application):
            container = self._open("SKF_OpenContainer", application, name)
            stack.callback(self._api.SKF_CloseContainer, container)
            kind = ULONG(0)
            self._call("SKF_GetContainerType", container, ctypes.pointer(kind))
            if kind.value != CONTAINER_ECC:
                continue
            der = self._export_certificate(container)
            if der is not None and self._usable(der) is not None:
                yield container, der

    def _locate(self, stack: ExitStack, device: Any) -> Located:
        """The best SM2 signing certificate in any application and container of the device."""
        found: list[Located] = []
        for name in self._name_list("SKF_EnumApplication", device):
            application = self._open("SKF_OpenApplication", device, name)
            stack.callback(self._api.SKF_CloseApplication, application)
            found += [
                Located(application, c, der) for c, der in self._containers(stack, application)
            ]
        if not found:
            raise AgentError("no_signing_certificate")
        return min(
            found,
            key=lambda item: certs.preference(x509.load_der_x509_certificate(item.certificate)),
        )

    def signing_certificate(self, *, token: str | None) -> SigningCertificate:
        """The SM2 signing certificate; SKF containers hold no CA chain, so ``chain`` is empty."""
        with self._lock, ExitStack() as stack:
            located = self._locate(stack, self._select(stack, token))
            return SigningCertificate(der=located.certificate, chain=(), alg="SM2")

    # --- signing -------------------------------------------------------------------------------

    def _verify_pin(self, application: Any, pin: str) -> None:
        """``SKF_VerifyPIN`` reports the remaining tries itself, unlike PKCS#11."""
        retries = ULONG(0)
        code = self._api.SKF_VerifyPIN(
            application, ULONG(USER_TYPE), pin.encode("utf-8"), ctypes.pointer(retries)
        )
        if code == SAR_OK:
            return
        if code == SAR_PIN_LOCKED or (code == SAR_PIN_INCORRECT and retries.value == 0):
            raise AgentError("pin_locked", detail=f"SKF_VerifyPIN 0x{code:08X}")
        if code == SAR_PIN_INCORRECT:
            raise AgentError("wrong_pin", retries_left=retries.value)
        if code in (SAR_PIN_INVALID, SAR_PIN_LEN_RANGE):
            raise AgentError("wrong_pin")
        raise AgentError("token_error", detail=f"SKF_VerifyPIN returned 0x{code:08X}")

    def _sign_digest(self, container: Any, e: bytes) -> EccSignatureBlob:
        blob = EccSignatureBlob()
        data = ctypes.create_string_buffer(e, len(e))
        self._call("SKF_ECCSignData", container, data, ULONG(len(e)), ctypes.pointer(blob))
        return blob

    def sign(self, *, token: str | None, pin: str, build_payload: PayloadBuilder) -> SignedPayload:
        """Verify the PIN, sign ``e = SM3(Z_A || payload)`` in the token, clear the security
        state (log out), and check the signature with gmalg before returning it."""
        with self._lock, ExitStack() as stack:
            located = self._locate(stack, self._select(stack, token))
            public_key = sm2_public_key(located.certificate)
            self._verify_pin(located.application, pin)
            try:
                payload = build_payload(located.certificate)
                blob = self._sign_digest(located.container, sm2.digest(payload, public_key))
            finally:
                self._clear(located.application)
        signature = pick_signature(blob, payload=payload, public_key=public_key)
        return SignedPayload(
            payload=payload,
            signature=signature,
            alg="SM2",
            certificate=located.certificate,
            chain=(),
        )

    def _clear(self, application: Any) -> None:
        code = self._api.SKF_ClearSecureState(application)
        if code != SAR_OK:
            log.warning("SKF_ClearSecureState returned 0x%08X", code)


def sm2_public_key(cert_der: bytes) -> bytes:
    """``04 || X || Y`` of the certificate's SM2 key, read from the DER (``cryptography`` cannot
    load SM2 keys)."""
    try:
        _algorithm, key = subject_public_key_info(cert_der)
    except (DerError, ValueError, IndexError) as error:
        raise AgentError("no_signing_certificate", detail="unreadable SM2 public key") from error
    if len(key) != 65 or key[0] != 0x04:
        raise AgentError("no_signing_certificate", detail="SM2 key is not an uncompressed point")
    return key


def signature_layouts(blob: EccSignatureBlob) -> list[bytes]:
    """``r || s`` read from the 64-byte fields: right-aligned as GM/T 0016 specifies, then
    left-aligned, which some libraries produce."""
    r, s = bytes(blob.r), bytes(blob.s)
    size = sm2.SIZE
    return [r[-size:] + s[-size:], r[:size] + s[:size]]


def pick_signature(
    blob: EccSignatureBlob,
    *,
    payload: bytes,
    public_key: bytes,
    check: Callable[[bytes, bytes, bytes], bool] = sm2.verifies,
) -> bytes:
    """The layout that verifies over ``payload``; ``token_error`` if none does (wrong digest
    convention, or a key that does not match its certificate)."""
    for signature in signature_layouts(blob):
        if check(payload, signature, public_key):
            return signature
    raise AgentError("token_error", detail="SM2 signature from the token does not verify")
