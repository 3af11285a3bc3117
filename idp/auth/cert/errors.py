"""Errors of certificate login, one class per failure (docs/ukey-protocol.md §3).

Every class has a stable ``code`` for logs and JSON answers and its own user message. The
technical reason (which check, which library message) goes into ``detail``, which only operators
see.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from idp.errors import IdpError


class CertificateLoginError(IdpError):
    """Root of certificate-login failures: the login is refused, nothing was changed."""

    code = "cert_login_failed"
    status = 400
    message = _l("证书登录失败")


class MalformedResponseError(CertificateLoginError):
    """The signed response is unusable: bad base64, JSON, DER, field set or algorithm name."""

    code = "cert_malformed_response"
    message = _l("签名数据格式错误，请重试")


class OriginMismatchError(CertificateLoginError):
    """The payload was signed for another site (phishing or relay)."""

    code = "cert_origin_mismatch"
    message = _l("签名数据不是为本网站生成的，请从本网站的登录页面重新登录")


class StaleTimestampError(CertificateLoginError):
    """The signed timestamp is outside ``IDP_CERT_CLOCK_SKEW``."""

    code = "cert_stale_timestamp"
    message = _l("签名时间与服务器时间相差过大，请检查电脑时间后重试")


class CertificateMismatchError(CertificateLoginError):
    """``cert_sha256`` in the payload names another certificate than the one submitted."""

    code = "cert_mismatch"
    message = _l("签名所用证书与提交的证书不一致")


class BadSignatureError(CertificateLoginError):
    """The signature does not verify with the certificate's public key."""

    code = "cert_bad_signature"
    message = _l("签名验证失败")


class AlgorithmMismatchError(BadSignatureError):
    """The announced algorithm does not fit the certificate's key (e.g. ES256 with an RSA key)."""

    code = "cert_alg_mismatch"
    message = _l("签名算法与证书密钥类型不符")


class ChallengeError(CertificateLoginError):
    """The challenge is unknown, expired, bound to another browser or already used."""

    code = "cert_challenge_invalid"
    message = _l("登录请求已过期或已使用，请重试")


class UntrustedIssuerError(CertificateLoginError):
    """No path to an anchor in the trust directory, or a CA on the path is unusable."""

    code = "cert_untrusted_issuer"
    message = _l("证书颁发机构不受信任")


class CertificateExpiredError(CertificateLoginError):
    code = "cert_expired"
    message = _l("证书已过期")


class CertificateNotYetValidError(CertificateLoginError):
    code = "cert_not_yet_valid"
    message = _l("证书尚未生效")


class KeyUsageError(CertificateLoginError):
    """The certificate lacks the digitalSignature key usage (e.g. a token's encryption cert)."""

    code = "cert_key_usage"
    message = _l("该证书不能用于签名登录")


class CertificateRevokedError(CertificateLoginError):
    code = "cert_revoked"
    message = _l("证书已被吊销")


class RevocationUnknownError(CertificateLoginError):
    """The revocation status is required but could not be established (CRL/OCSP unreachable,
    stale or unverifiable). A 503: trying again later may work."""

    code = "cert_revocation_unknown"
    status = 503
    message = _l("无法确认证书吊销状态，请稍后再试")


class NotOrganisationCertificateError(CertificateLoginError):
    """The issuing CA's entry in ``uscc-order.json`` names the certificate policies or EKUs of its
    organisation certificates, and this one has none of them: a personal or employee
    certificate, even if it carries the organisation's code."""

    code = "cert_not_organisation"
    message = _l("该证书不是机构证书")


class IssuerRulesUnusableError(CertificateLoginError):
    """The trust directory's ``uscc-order.json`` became unreadable or invalid while running. It
    may have held an issuer's requirements, so logins wait until it is fixed (a 503)."""

    code = "cert_issuer_rules_unusable"
    status = 503
    message = _l("证书登录暂不可用，请联系平台管理员")


class NoUsccError(CertificateLoginError):
    """No unified social credit code with a valid GB 32100 check character in the certificate."""

    code = "cert_no_uscc"
    message = _l("证书中未找到有效的统一社会信用代码")


class OrgSuspendedCertificateError(CertificateLoginError):
    """The certificate's organisation is suspended by the platform (暂停使用)."""

    code = "cert_org_suspended"
    status = 403
    message = _l("本机构已被平台暂停使用，请联系平台管理员")
