"""Running the provider: liveness and readiness probes (``/healthz``, ``/readyz``) and the
configuration check behind ``idp check`` and the start-up refusal in production mode.

Sits above the backends and beside the lowest domains: it reads the database, the ephemeral
store and the key store, and imports no domain.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from idp.extensions import serves_machines
    from idp.ops import metrics_view  # noqa: F401  (adds /metrics to the blueprint)
    from idp.ops.probes import bp

    app.register_blueprint(bp)
    serves_machines(app, blueprint=bp.name)  # probes and scrapers, never a browser
