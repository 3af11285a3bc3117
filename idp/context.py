"""The current app, request and request globals themselves, for the code every request runs.

Flask's ``current_app``, ``request`` and ``g`` are werkzeug ``LocalProxy`` objects. An
attribute read through one is first looked up on the proxy itself, where Python 3.11 raises
and drops an ``AttributeError`` with its formatted message, and only then found on the object
through three Python calls: ~0.8 µs, against 0.04–0.13 µs on the object. A client credentials
request read 66 attributes that way. Code on the path of every request (the pipeline's hooks,
the protocol endpoints and the helpers they call) takes the object here once and reads it;
elsewhere the proxies are clearer and cost nothing that matters (docs/performance.md,
"Attributes read through Flask's proxies").
"""

from __future__ import annotations

from collections.abc import Callable

import flask
from flask import Flask, Request
from flask.ctx import _AppCtxGlobals

# Each proxy's own function for its object: an attribute of the proxy instance, read without
# the detour (werkzeug documents it for this use).
app: Callable[[], Flask] = flask.current_app._get_current_object  # type: ignore[attr-defined]
request: Callable[[], Request] = flask.request._get_current_object  # type: ignore[attr-defined]
g: Callable[[], _AppCtxGlobals] = flask.g._get_current_object
