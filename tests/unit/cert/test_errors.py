"""Certificate-login errors: one class per failure, stable distinct codes, Chinese messages."""

from __future__ import annotations

import inspect

from idp.auth.cert import errors
from idp.errors import IdpError

CLASSES = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, errors.CertificateLoginError)
]


def test_every_failure_has_its_own_code_and_message():
    assert len(CLASSES) >= 15
    assert len({cls.code for cls in CLASSES}) == len(CLASSES)
    assert len({str(cls.message) for cls in CLASSES}) == len(CLASSES)
    for cls in CLASSES:
        assert issubclass(cls, IdpError)
        assert cls.code.startswith("cert_")
        assert any("\u4e00" <= ch <= "\u9fff" for ch in str(cls.message))


def test_statuses():
    not_bad_requests = {cls for cls in CLASSES if cls.status != 400}
    assert not_bad_requests == {
        errors.RevocationUnknownError,
        errors.IssuerRulesUnusableError,
        errors.OrgSuspendedCertificateError,
    }
    assert errors.RevocationUnknownError.status == 503
    assert errors.IssuerRulesUnusableError.status == 503
    assert errors.OrgSuspendedCertificateError.status == 403  # the certificate is fine


def test_messages_of_the_brief():
    assert str(errors.CertificateExpiredError.message) == "证书已过期"
    assert str(errors.CertificateNotYetValidError.message) == "证书尚未生效"
    assert str(errors.CertificateRevokedError.message) == "证书已被吊销"
    assert str(errors.UntrustedIssuerError.message) == "证书颁发机构不受信任"
    assert str(errors.BadSignatureError.message) == "签名验证失败"
    assert str(errors.ChallengeError.message) == "登录请求已过期或已使用，请重试"
    assert str(errors.NoUsccError.message) == "证书中未找到有效的统一社会信用代码"
    assert str(errors.KeyUsageError.message) == "该证书不能用于签名登录"
    assert str(errors.NotOrganisationCertificateError.message) == "该证书不是机构证书"
    assert str(errors.RevocationUnknownError.message) == "无法确认证书吊销状态，请稍后再试"


def test_detail_stays_out_of_the_message():
    error = errors.CertificateRevokedError(detail="CRL says serial 01 revoked")
    assert str(error) == "证书已被吊销"
    assert error.detail == "CRL says serial 01 revoked"
