"""Certificate (UKey / 法人一证通) login: the checks of docs/ukey-protocol.md §3.

The views call :func:`idp.auth.cert.verify.verify_login`; everything else here serves it.
"""
