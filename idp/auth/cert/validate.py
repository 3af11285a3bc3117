"""Path validation of login certificates against the trust directory, with revocation.

pyhanko-certvalidator does the RFC 5280 work (path building, signatures, validity of the CAs,
name chaining, CRL and OCSP processing); this module decides what is trusted, which revocation
information counts and how failures map to :mod:`idp.auth.cert.errors`.

Trust: the certificates in ``IDP_TRUST_DIR`` (``*.pem``, ``*.cer``, ``*.crt``; DER or PEM, PEM
files may hold several) are the only anchors. The operating system's store is never used, and
issuer certificates are never fetched from AIA: the agent sends the chain, the directory holds
the rest.

Order of the checks, as docs/ukey-protocol.md §3 lists them: a path to an anchor exists
(:class:`UntrustedIssuerError`); the certificate is within its validity period, checked here on
the exact instant so the message says which side (:class:`CertificateExpiredError`,
:class:`CertificateNotYetValidError`); it has the digitalSignature key usage, and the extension
must be present, it is no CA certificate, and an extendedKeyUsage extension, where present,
allows client authentication or an EKU of the issuer's entry (:class:`KeyUsageError`); then the
full validation: signatures and validity of every CA, revocation.

Revocation policy:

- **End-entity certificate, hard fail.** When it declares revocation information (a CRL
  distribution point or an OCSP responder in AIA), its status must be established or the login
  fails with :class:`RevocationUnknownError` (503, "try again later"), never silently passes.
  Sources: OCSP first when ``IDP_CERT_OCSP`` is on and the certificate names a responder; then
  CRLs: the ``*.crl`` files of the trust directory, CRLs fetched earlier (kept in memory until
  their nextUpdate, at most 24 h), and, when ``IDP_CERT_FETCH_REVOCATION`` is on, CRLs fetched
  from its distribution points. A certificate that only names an OCSP responder while OCSP is
  off therefore needs a CRL file from its issuer. A certificate that declares nothing is still
  checked, hard, against a CRL file of its issuer when the directory holds one, and is not
  checked otherwise.
- **CA certificates, soft fail.** A CA that declares revocation information is checked with the
  same sources; when none can be fetched the path is accepted (the failure is logged), a CA
  without revocation information is not checked. A CA found revoked, or whose CRL is obtained
  but stale or badly signed, fails the login.
- A revoked end-entity certificate gives :class:`CertificateRevokedError`; a revoked CA
  :class:`UntrustedIssuerError`. CRLs and OCSP responses must be fresh (thisUpdate/nextUpdate)
  within ``IDP_CERT_CLOCK_SKEW``.

Network use is bounded: only certificates whose signature already chains to an anchor get their
CRL or OCSP URLs fetched (pyhanko checks each signature before its revocation), at most
``MAX_FETCHES`` requests of ``FETCH_TIMEOUT`` seconds each, ``VALIDATION_TIMEOUT`` overall.

SM2 chains: ``cryptography`` cannot verify SM2 signatures, so the validation context carries
:class:`Sm2SignatureValidator`, which verifies SM2-with-SM3 with gmalg and
hands every other algorithm to pyhanko's default validator. The algorithm policy stays pyhanko's
default (no MD5/SHA-1, RSA >= 2048 bits): it already admits SM2-with-SM3, whose OID carries no
separate hash, so ``AcceptAllAlgorithms`` is not needed, not even for SM2.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Coroutine, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from asn1crypto import algos, keys
from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import (
    ExpiredError,
    InsufficientRevinfoError,
    NotYetValidError,
    OCSPFetchError,
    PathBuildingError,
    RevokedError,
    ValidationError,
)
from pyhanko_certvalidator.fetchers import Fetchers
from pyhanko_certvalidator.fetchers.api import (
    CertificateFetcher,
    CRLFetcher,
    FetchLimits,
    OCSPFetcher,
)
from pyhanko_certvalidator.fetchers.common_utils import enumerate_delivery_point_urls
from pyhanko_certvalidator.path import ValidationPath
from pyhanko_certvalidator.policy_decl import (
    CertRevTrustPolicy,
    RevocationCheckingPolicy,
    RevocationCheckingRule,
)
from pyhanko_certvalidator.sig_validate import (
    DEFAULT_VALIDATION_CONTEXT,
    DefaultSignatureValidator,
    SignatureValidationContext,
)
from pyhanko_certvalidator.util import get_declared_revinfo, get_relevant_crl_dps, issuer_serial
from pyhanko_certvalidator.validate import validate_usage

from idp.auth.cert.errors import (
    CertificateExpiredError,
    CertificateNotYetValidError,
    CertificateRevokedError,
    KeyUsageError,
    MalformedResponseError,
    RevocationUnknownError,
    UntrustedIssuerError,
)
from idp.auth.cert.sm2 import SM2_WITH_SM3, is_sm2_key, public_point, sm2_verify
from idp.auth.cert.trust import MAX_CHAIN, CrlCache, TrustMaterial, TrustStore, trust_store
from idp.config import Settings

log = logging.getLogger(__name__)

FETCH_TIMEOUT = 3
VALIDATION_TIMEOUT = 10
MAX_FETCHES = 16
REQUIRED_KEY_USAGE = {"digital_signature"}
# A login is client authentication: clientAuth, or anyExtendedKeyUsage.
CLIENT_AUTH_PURPOSES = frozenset({"1.3.6.1.5.5.7.3.2", "2.5.29.37.0"})


# --- SM2 signatures in chains ------------------------------------------------------------------


class Sm2SignatureValidator(DefaultSignatureValidator):
    """pyhanko-certvalidator signature check that handles SM2-with-SM3 (certificates, CRLs,
    OCSP responses) and leaves every other algorithm to the default validator."""

    def validate_signature(
        self,
        signature: bytes,
        signed_data: bytes,
        public_key_info: keys.PublicKeyInfo,
        signature_algorithm: algos.SignedDigestAlgorithm,
        context: SignatureValidationContext = DEFAULT_VALIDATION_CONTEXT,
    ) -> None:
        if signature_algorithm["algorithm"].dotted != SM2_WITH_SM3:
            super().validate_signature(
                signature, signed_data, public_key_info, signature_algorithm, context
            )
            return
        if context.prehashed or not is_sm2_key(public_key_info):
            raise InvalidSignature("SM2-with-SM3 needs an SM2 key and the whole message")
        try:
            decoded = algos.DSASignature.load(signature, strict=True)
            r, s = decoded["r"].native, decoded["s"].native
        except (ValueError, TypeError):
            raise InvalidSignature("SM2 signature is not a DER SEQUENCE of r and s") from None
        if not sm2_verify(public_point(public_key_info), signed_data, r, s):
            raise InvalidSignature("SM2 signature does not verify")


# --- fetchers -----------------------------------------------------------------------------------


def _crl_urls(cert: asn1_x509.Certificate) -> tuple[str, ...]:
    urls = {
        url
        for point in get_relevant_crl_dps(cert, use_deltas=True)
        for url in enumerate_delivery_point_urls(point)
    }
    return tuple(sorted(urls))


class CachingCrlFetcher(CRLFetcher):
    """CRLs for a certificate from the shared cache, else from ``inner`` (HTTP); with no
    ``inner`` (fetching off) only the cache, which then stays empty."""

    def __init__(self, inner: CRLFetcher | None, cache: CrlCache) -> None:
        self._inner = inner
        self._cache = cache
        self._by_cert: dict[bytes, list[asn1_crl.CertificateList]] = {}

    async def fetch(self, cert: Any, *, use_deltas: Any = None) -> list[asn1_crl.CertificateList]:
        key = issuer_serial(cert)
        if key not in self._by_cert:
            self._by_cert[key] = await self._fetch(cert, use_deltas=use_deltas)
        return self._by_cert[key]

    async def _fetch(self, cert: Any, *, use_deltas: Any) -> list[asn1_crl.CertificateList]:
        urls = _crl_urls(cert)
        if not urls or self._inner is None:
            return []
        cached = self._cache.get(urls)
        if cached is not None:
            return cached
        fetched = list(await self._inner.fetch(cert, use_deltas=use_deltas))
        self._cache.put(urls, fetched)
        return fetched

    def fetched_crls(self) -> list[asn1_crl.CertificateList]:
        return [item for items in self._by_cert.values() for item in items]

    def fetched_crls_for_cert(self, cert: Any) -> list[asn1_crl.CertificateList]:
        return self._by_cert[issuer_serial(cert)]


class DisabledOcspFetcher(OCSPFetcher):
    """OCSP off (``IDP_CERT_OCSP=0``): every query fails as if the responder were unreachable."""

    async def fetch(self, cert: Any, authority: Any) -> Any:
        raise OCSPFetchError("OCSP is disabled (IDP_CERT_OCSP)")

    def fetched_responses(self) -> list[Any]:
        return []

    def fetched_responses_for_cert(self, cert: Any) -> list[Any]:
        return []


class NoCertificateFetcher(CertificateFetcher):
    """Issuer certificates come from the chain and the trust directory only, never from AIA."""

    async def fetch_cert_issuers(self, cert: Any) -> AsyncGenerator[asn1_x509.Certificate, None]:
        return
        yield

    async def fetch_crl_issuers(
        self, certificate_list: Any
    ) -> AsyncGenerator[asn1_x509.Certificate, None]:
        return
        yield

    def fetched_certs(self) -> list[asn1_x509.Certificate]:
        return []


# --- validation ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Options:
    fetch_crls: bool
    ocsp: bool
    tolerance: timedelta
    login_purposes: frozenset[str]


def validate_chain(
    cert_der: bytes,
    chain_der: Iterable[bytes],
    *,
    at: datetime,
    settings: Settings,
    store: TrustStore | None = None,
    issuer_purposes: frozenset[str] = frozenset(),
) -> None:
    """Validate the certificate (with the CA certificates the agent sent) at ``at``.

    ``issuer_purposes``: the EKUs the issuing CA's entry names, accepted besides client
    authentication. Raises UntrustedIssuerError, CertificateExpiredError,
    CertificateNotYetValidError, KeyUsageError, CertificateRevokedError or
    RevocationUnknownError; see the module docstring.
    """
    if at.utcoffset() is None:
        raise ValueError("validate_chain needs an aware datetime")
    store = store or trust_store(settings.trust_dir)
    material = store.material()
    if not material.anchors:
        raise UntrustedIssuerError(detail=f"no trust anchors in {store.directory}")
    leaf = _load_certificate(cert_der)
    intermediates = [_load_certificate(der) for der in list(chain_der)[:MAX_CHAIN]]
    options = _Options(
        fetch_crls=settings.cert_fetch_revocation,
        ocsp=settings.cert_ocsp,
        tolerance=timedelta(seconds=max(1, settings.cert_clock_skew)),
        login_purposes=CLIENT_AUTH_PURPOSES | issuer_purposes,
    )
    rule = _end_entity_rule(leaf, material, ocsp=options.ocsp)
    try:
        run_async(
            asyncio.wait_for(
                _validate(leaf, intermediates, at, material, store.crl_cache, options, rule),
                VALIDATION_TIMEOUT,
            )
        )
    except TimeoutError:
        raise RevocationUnknownError(detail="validation timed out") from None


T = TypeVar("T")


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run pyhanko's async validation from synchronous code. Where this thread already runs an
    event loop (an async server, a test harness), ``asyncio.run`` refuses: use a fresh thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _load_certificate(der: bytes) -> asn1_x509.Certificate:
    try:
        x509.load_der_x509_certificate(der)
        return asn1_x509.Certificate.load(der)
    except ValueError:
        raise MalformedResponseError(detail="a chain certificate is not DER") from None


def _end_entity_rule(
    leaf: asn1_x509.Certificate, material: TrustMaterial, *, ocsp: bool
) -> RevocationCheckingRule:
    declares_crl, declares_ocsp = get_declared_revinfo(leaf)
    if ocsp and declares_ocsp:
        return RevocationCheckingRule.CRL_OR_OCSP_REQUIRED
    issuer = leaf.issuer.hashable
    local_crl = any(item.issuer.hashable == issuer for item in material.crls)
    if declares_crl or declares_ocsp or local_crl:
        return RevocationCheckingRule.CRL_REQUIRED
    return RevocationCheckingRule.NO_CHECK


async def _validate(
    leaf: asn1_x509.Certificate,
    intermediates: list[asn1_x509.Certificate],
    at: datetime,
    material: TrustMaterial,
    cache: CrlCache,
    options: _Options,
    rule: RevocationCheckingRule,
) -> ValidationPath:
    # Imported here: aiohttp costs every worker ~10 MiB, and only UKey logins need it.
    from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend

    limits = FetchLimits(max_requests=MAX_FETCHES, max_cert_requests=0)
    async with AIOHttpFetcherBackend(per_request_timeout=FETCH_TIMEOUT, limits=limits) as http:
        fetchers = Fetchers(
            ocsp_fetcher=http.ocsp_fetcher if options.ocsp else DisabledOcspFetcher(),
            crl_fetcher=CachingCrlFetcher(http.crl_fetcher if options.fetch_crls else None, cache),
            cert_fetcher=NoCertificateFetcher(),
        )
        context = ValidationContext(
            trust_roots=list(material.anchors),
            moment=at,
            crls=list(material.crls),
            allow_fetching=True,
            fetchers=fetchers,
            revinfo_policy=CertRevTrustPolicy(
                RevocationCheckingPolicy(
                    ee_certificate_rule=rule,
                    intermediate_ca_cert_rule=RevocationCheckingRule.CHECK_IF_DECLARED_SOFT,
                )
            ),
            time_tolerance=options.tolerance,
            signature_validator=Sm2SignatureValidator(),
        )
        validator = CertificateValidator(
            leaf, intermediate_certs=intermediates, validation_context=context
        )
        await _check_path_exists(context, leaf)
        _check_validity_period(leaf, at)
        _check_key_usage(leaf)
        _check_extended_key_usage(leaf, options.login_purposes)
        path = await _validate_path(validator)
        for failure in context.soft_fail_exceptions:
            log.warning("CA revocation not checked (soft fail): %s", failure)
        return path


async def _check_path_exists(context: ValidationContext, leaf: asn1_x509.Certificate) -> None:
    try:
        await context.path_builder.async_build_paths(leaf)
    except PathBuildingError as error:
        raise UntrustedIssuerError(detail=str(error)) from None


def _check_validity_period(leaf: asn1_x509.Certificate, at: datetime) -> None:
    validity = leaf["tbs_certificate"]["validity"]
    not_before, not_after = validity["not_before"].native, validity["not_after"].native
    if at < not_before:
        raise CertificateNotYetValidError(detail=f"valid from {not_before.isoformat()}")
    if at > not_after:
        raise CertificateExpiredError(detail=f"expired at {not_after.isoformat()}")


def _check_key_usage(leaf: asn1_x509.Certificate) -> None:
    """digitalSignature must be present (a missing keyUsage extension does not do), and a CA
    certificate is no organisation's login certificate."""
    try:
        validate_usage(leaf, REQUIRED_KEY_USAGE, set(), True)
    except ValidationError as error:
        raise KeyUsageError(detail=str(error)) from None
    if leaf.ca:
        raise KeyUsageError(detail="a CA certificate cannot log in")


def _check_extended_key_usage(leaf: asn1_x509.Certificate, accepted: frozenset[str]) -> None:
    """An extendedKeyUsage extension limits what the key is for (RFC 5280 4.2.1.12): a TLS
    server or code-signing certificate of a trusted CA is no login certificate, even with the
    organisation's code. Without the extension the key is not limited."""
    usages = leaf.extended_key_usage_value
    if usages is None:
        return
    purposes = {purpose.dotted for purpose in usages}
    if not purposes & accepted:
        raise KeyUsageError(detail=f"extended key usages {sorted(purposes)} allow no login")


async def _validate_path(validator: CertificateValidator) -> ValidationPath:
    try:
        return await validator.async_validate_path()
    except RevokedError as error:
        if error.is_ee_cert:
            raise CertificateRevokedError(detail=str(error)) from None
        raise UntrustedIssuerError(detail=f"issuing CA revoked: {error}") from None
    except InsufficientRevinfoError as error:
        raise RevocationUnknownError(detail=str(error)) from None
    except (ExpiredError, NotYetValidError) as error:
        raise UntrustedIssuerError(detail=f"CA outside its validity: {error}") from None
    except (ValidationError, PathBuildingError) as error:
        raise UntrustedIssuerError(detail=str(error)) from None
    except (UnsupportedAlgorithm, ValueError, TypeError, KeyError) as error:
        # Algorithms or encodings neither pyhanko nor the SM2 plug-in can verify.
        raise UntrustedIssuerError(detail=f"{type(error).__name__}: {error}") from None
