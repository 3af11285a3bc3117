"""Load an implementation by short name from a registry of import strings, so that optional
libraries (redis, PyKCS11) are imported only where they are selected."""

from __future__ import annotations

from importlib import import_module
from typing import Any

# Every implementation by the name its setting selects (IDP_STORE_BACKEND, IDP_SMS_BACKEND,
# IDP_REALNAME_BACKEND, IDP_KEY_STORE); the settings check names against these, the packages
# load from them.
STORES = {"sql": "idp.store.sql:SqlStore", "redis": "idp.store.redis:RedisStore"}
SMS_GATEWAYS = {
    "outbox": "idp.sms.outbox:OutboxSmsGateway",
    "aliyun": "idp.sms.aliyun:AliyunSmsGateway",
    "tencent": "idp.sms.tencent:TencentSmsGateway",
}
REALNAME_VERIFIERS = {
    "sandbox": "idp.realname.sandbox:SandboxRealNameVerifier",
    "tencent": "idp.realname.tencent:TencentRealNameVerifier",
    "aliyun": "idp.realname.aliyun:AliyunRealNameVerifier",
}
# Refused outside development mode (IDP_DEV_MODE=0): they deliver nothing and check nothing.
DEVELOPMENT_ONLY = frozenset({"outbox", "sandbox"})

KEY_STORES = {
    "files": "idp.signing.files:FileKeyStore",
    "pkcs11": "idp.signing.pkcs11:Pkcs11KeyStore",
}


def load_backend(registry: dict[str, str], name: str) -> Any:
    try:
        module_name, _, attribute = registry[name].partition(":")
    except KeyError:
        raise LookupError(f"unknown backend {name!r}; choose one of {sorted(registry)}") from None
    return getattr(import_module(module_name), attribute)
