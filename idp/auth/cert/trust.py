"""The trust directory (``IDP_TRUST_DIR``): its anchors, CRL files and issuer rules, re-read
when a file in it changes, and the CRLs fetched for it. No pyhanko-certvalidator here: the
startup check reads the directory, and only a UKey login validates a chain
(:mod:`idp.auth.cert.validate`, imported then).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asn1crypto import crl as asn1_crl
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509

from idp.auth.cert.errors import IssuerRulesUnusableError
from idp.auth.cert.issuers import DEFAULT_RULES, IssuerRules, load_issuer_rules
from idp.auth.cert.uscc import ORDER_FILE
from idp.config import ConfigError

log = logging.getLogger(__name__)

ANCHOR_SUFFIXES = (".pem", ".cer", ".crt")
CRL_SUFFIX = ".crl"
MAX_CHAIN = 8  # issuer certificates a login may send with its own
MAX_CRL_CACHE_SECONDS = 24 * 3600
MAX_CACHED_CRL_SETS = 256
MAX_STORES = 16


@dataclass(frozen=True)
class TrustMaterial:
    """What one reading of the trust directory gave."""

    anchors: tuple[asn1_x509.Certificate, ...] = ()
    crls: tuple[asn1_crl.CertificateList, ...] = ()
    issuer_rules: Mapping[x509.Name, IssuerRules] = field(default_factory=dict)
    rules_error: str = ""  # why uscc-order.json is unusable; empty when it is fine


class CrlCache:
    """CRLs fetched from distribution points, per set of URLs, until their nextUpdate (at most
    ``MAX_CRL_CACHE_SECONDS``). Safe to share between threads."""

    def __init__(self, max_entries: int = MAX_CACHED_CRL_SETS) -> None:
        self._entries: OrderedDict[tuple[str, ...], tuple[float, list[Any]]] = OrderedDict()
        self._lock = threading.Lock()
        self._max_entries = max_entries

    def get(self, urls: tuple[str, ...]) -> list[Any] | None:
        with self._lock:
            entry = self._entries.get(urls)
            if entry is None or entry[0] <= time.time():
                self._entries.pop(urls, None)
                return None
            return entry[1]

    def put(self, urls: tuple[str, ...], crls: list[Any]) -> None:
        now = time.time()
        expires = now + MAX_CRL_CACHE_SECONDS
        for item in crls:
            next_update = item["tbs_cert_list"]["next_update"].native
            if next_update is None:
                return  # no promise of freshness: never cache
            expires = min(expires, next_update.timestamp())
        if not crls or expires <= now:
            return
        with self._lock:
            self._entries[urls] = (expires, crls)
            self._entries.move_to_end(urls)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)


class TrustStore:
    """Anchors, CRL files and issuer rules of one trust directory, re-read when a file in it
    changes (names, sizes and mtimes are compared on each use), plus the fetched-CRL cache."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.crl_cache = CrlCache()
        self._lock = threading.Lock()
        self._stamp: tuple[tuple[str, int, int], ...] | None = None
        self._material = TrustMaterial()

    def material(self) -> TrustMaterial:
        """The current contents, reloaded first when the directory changed."""
        stamp = self._read_stamp()
        with self._lock:
            if stamp != self._stamp:
                self._material = _load_material(self.directory)
                self._stamp = stamp
            return self._material

    def rules_for(self, issuer: x509.Name) -> IssuerRules:
        """The entry of ``issuer`` in uscc-order.json, else the defaults. While the file is
        broken, IssuerRulesUnusableError: it may have held this issuer's requirements."""
        material = self.material()
        if material.rules_error:
            raise IssuerRulesUnusableError(detail=material.rules_error)
        return material.issuer_rules.get(issuer, DEFAULT_RULES)

    def check_rules(self) -> None:
        """ConfigError naming the file and entry when uscc-order.json is unusable."""
        error = self.material().rules_error
        if error:
            raise ConfigError(error)

    def _read_stamp(self) -> tuple[tuple[str, int, int], ...]:
        try:
            entries = list(self.directory.iterdir())
        except OSError:
            return ()
        stamp = []
        for path in entries:
            if path.suffix.lower() in (*ANCHOR_SUFFIXES, CRL_SUFFIX) or path.name == ORDER_FILE:
                try:
                    info = path.stat()
                except OSError:
                    continue
                stamp.append((path.name, info.st_mtime_ns, info.st_size))
        return tuple(sorted(stamp))


_stores: OrderedDict[Path, TrustStore] = OrderedDict()
_stores_lock = threading.Lock()


def trust_store(directory: Path) -> TrustStore:
    """The process's :class:`TrustStore` for ``directory``.

    A cache keyed by the directory, not per-app state: two apps with the same directory see the
    same files. Views may equally keep their own store in ``app.extensions`` and pass it on.
    """
    key = Path(directory).resolve()
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = TrustStore(key)
            while len(_stores) > MAX_STORES:
                _stores.popitem(last=False)
        _stores.move_to_end(key)
        return store


def _load_material(directory: Path) -> TrustMaterial:
    anchors: list[asn1_x509.Certificate] = []
    crls: list[asn1_crl.CertificateList] = []
    for path in sorted(directory.iterdir()) if directory.is_dir() else []:
        suffix = path.suffix.lower()
        try:
            if suffix in ANCHOR_SUFFIXES:
                anchors.extend(_read_certificates(path.read_bytes()))
            elif suffix == CRL_SUFFIX:
                crls.extend(_read_crls(path.read_bytes()))
        except (OSError, ValueError) as error:
            # One unreadable file must not take certificate login down; the others still count.
            log.warning("trust directory: skipping %s: %s", path.name, error)
    rules, rules_error = _load_rules(directory / ORDER_FILE)
    log.info(
        "trust directory %s: %d anchors, %d CRLs, %d issuer entries",
        directory,
        len(anchors),
        len(crls),
        len(rules),
    )
    return TrustMaterial(
        anchors=tuple(anchors), crls=tuple(crls), issuer_rules=rules, rules_error=rules_error
    )


def _load_rules(path: Path) -> tuple[dict[x509.Name, IssuerRules], str]:
    """The issuer rules, or none and why. A broken file is not ignored: falling back to the
    defaults would silently drop the requirements it held."""
    try:
        return load_issuer_rules(path), ""
    except ConfigError as error:
        log.error("trust directory: %s; certificate logins are refused until it is fixed", error)
        return {}, str(error)


def _der_blocks(data: bytes, pem_types: set[str]) -> list[bytes]:
    if not pem.detect(data):
        return [data]
    return [der for kind, _, der in pem.unarmor(data, multiple=True) if kind in pem_types]


def _read_certificates(data: bytes) -> list[asn1_x509.Certificate]:
    result = []
    for der in _der_blocks(data, {"CERTIFICATE"}):
        x509.load_der_x509_certificate(der)  # parse fully now: a broken file fails here
        result.append(asn1_x509.Certificate.load(der))
    return result


def _read_crls(data: bytes) -> list[asn1_crl.CertificateList]:
    result = []
    for der in _der_blocks(data, {"X509 CRL"}):
        x509.load_der_x509_crl(der)
        result.append(asn1_crl.CertificateList.load(der))
    return result
