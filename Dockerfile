# The provider's image: idp-serve (granian) serving idp:create_app() as an unprivileged user.
#
#   docker build -t idp .
#   docker run -p 8000:8000 --env-file idp.env idp            # the web workers
#   docker run --env-file idp.env -e MIGRATE_AT_START=0 idp idp worker   # the SMS worker
#
# Dependencies come from requirements-runtime.lock (the runtime part of requirements.lock, same
# pins, every file's hash checked); compilers exist only in the build stage. The entry point
# runs `idp check` and `idp db upgrade` before the command (deploy/entrypoint.sh).

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
# Only for a dependency without a wheel for this platform (PyKCS11 is built with SWIG); the
# compilers never reach the final image, so the distribution's current ones are fine.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential swig \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
COPY requirements-runtime.lock /tmp/requirements-runtime.lock
RUN /opt/venv/bin/pip install --require-hashes --no-deps -r /tmp/requirements-runtime.lock
WORKDIR /app
COPY pyproject.toml babel.cfg ./
COPY idp ./idp
COPY devtools ./devtools
# ARGON2_AVX2=1 builds the password hash for AVX2 (half the CPU per login), for an image that
# only runs on CPUs with AVX2 (x86-64 since 2013-2015); the default wheel runs on any x86-64.
ARG ARGON2_AVX2=0
RUN if [ "$ARGON2_AVX2" = 1 ]; then \
        /opt/venv/bin/python -m devtools.argon2_build /tmp/requirements-runtime.lock; \
    fi
COPY clients ./clients
COPY migrations ./migrations
COPY keys ./keys
COPY deploy ./deploy
# The project runs from /app (PYTHONPATH), where migrations/ and keys/trust sit beside the
# package; its commands as small wrappers; the catalogues compiled (no .mo in the repository).
RUN printf '#!/bin/sh\nexec python -m idp.cli "$@"\n' > /opt/venv/bin/idp \
    && printf '#!/bin/sh\nexec python -m idp.serve "$@"\n' > /opt/venv/bin/idp-serve \
    && printf '#!/bin/sh\nexec python -m devtools.cli "$@"\n' > /opt/venv/bin/idp-dev \
    && chmod 755 /opt/venv/bin/idp /opt/venv/bin/idp-serve /opt/venv/bin/idp-dev \
    && /opt/venv/bin/pybabel compile -d idp/translations -f

FROM python:3.11-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    IDP_INSTANCE_DIR=/var/lib/idp \
    IDP_KEYS_DIR=/var/lib/idp/keys \
    PROMETHEUS_MULTIPROC_DIR=/tmp/idp-metrics
# libsofthsm2 or a vendor's PKCS#11 module is mounted or added in a derived image when
# IDP_KEY_STORE=pkcs11.
RUN groupadd --system --gid 10001 idp \
    && useradd --system --uid 10001 --gid idp --home-dir /var/lib/idp --shell /usr/sbin/nologin idp \
    && mkdir -p /var/lib/idp/keys \
    && chown -R idp:idp /var/lib/idp
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
WORKDIR /app
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
ENTRYPOINT ["/app/deploy/entrypoint.sh"]
CMD ["idp-serve"]
