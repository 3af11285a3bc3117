#!/bin/sh
# Container entry point: refuse to start on a configuration problem (idp check names each
# variable to set), migrate the database to the release's schema, then run the command
# (idp-serve by default). MIGRATE_AT_START=0 skips the migration (the SMS worker; replicas
# after the first).
set -eu

idp check
if [ "${MIGRATE_AT_START:-1}" = "1" ]; then
    idp db upgrade
fi
exec "$@"
