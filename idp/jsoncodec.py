"""JSON as the provider writes and reads it on its hot paths: orjson, compiled code.

Every protocol request encodes or decodes JSON several times: its answer, its access line, the
columns its statement returns (a token's identity and claims, its client's metadata), the
kept client, the login session and the one-time values in the store. The standard library's
codec was 2–5 % of those requests' instructions (docs/performance.md, "JSON in compiled
code"). The text is compact UTF-8; what JSON lacks goes where it went before: Flask's rules for
its answers (``JSONProvider``), ``str()`` for the log.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from flask import Response
from flask.json.provider import DefaultJSONProvider

# Dictionary keys that are not strings (an int, say) become strings, as the standard library
# makes them, rather than an error.
_OPTIONS = orjson.OPT_NON_STR_KEYS
# Flask's answers: keys sorted as Flask sorts them, dates as HTTP dates by Flask's own default.
_ANSWER_OPTIONS = _OPTIONS | orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
# The log: what JSON lacks as its str(), dates and dataclasses included, as before.
_LOG_OPTIONS = _OPTIONS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS

# What orjson refuses and the standard library takes goes to the standard library, so nothing
# that was read or written before fails now: a lone surrogate (the escape "\ud800" in a JSON
# body, or such a string to write: escaped as before), NaN, an integer beyond 64 bits to write.
# An integer beyond 64 bits is *read* as a float; none of the provider's JSON holds one.


def loads(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)  # the standard library's error where it is not JSON at all


def dumpb(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON."""
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":")).encode()


def dumps(value: Any) -> str:
    return dumpb(value).decode()


def dumps_loosely(value: Any) -> str:
    """For the log: what JSON cannot hold is written as its ``str()``."""
    try:
        return orjson.dumps(value, default=str, option=_LOG_OPTIONS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, default=str)  # escaped: the line can still be written


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON (``jsonify``, ``request.get_json``, the test client, Authlib's answers)
    through orjson, to Flask's rules (sorted keys, its ``default`` for dates, decimals and the
    like), non-ASCII text as UTF-8 rather than ``\\u`` escapes."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return self._encode(obj).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        body = self._encode(self._prepare_response_obj(args, kwargs)) + b"\n"
        return Response(body, mimetype=self.mimetype)  # the app's response class

    def _encode(self, obj: Any) -> bytes:
        try:
            return orjson.dumps(obj, default=self.default, option=_ANSWER_OPTIONS)
        except orjson.JSONEncodeError:
            return super().dumps(obj).encode()
