#!/usr/bin/env bash
# A PostgreSQL cluster of the tests' own on port 5433 (.ci/run calls it), for the test that
# restarts and stops the database under a running job: never the shared cluster on 5432, which
# every other test and service uses. Trust auth on 127.0.0.1, database "test". Prints
# TESSERA_TEST_CHAOS_DATABASE_URL and TESSERA_TEST_CHAOS_CLUSTER ("<version> <name>", for
# pg_ctlcluster) lines to eval. Runs as root.
set -euo pipefail
PORT=${CHAOS_PG_PORT:-5433}
NAME=tessera-chaos
VERSION=$(ls /etc/postgresql | sort -n | tail -n 1)
if ! pg_lsclusters -h | awk '{print $2}' | grep -qx "$NAME"; then
  echo "creating PostgreSQL cluster $VERSION/$NAME on port $PORT" >&2
  pg_createcluster --quiet --port "$PORT" "$VERSION" "$NAME" -- --auth-host=trust --auth-local=trust >/dev/null
fi
if ! pg_lsclusters -h | awk -v name="$NAME" '$2 == name {print $4}' | grep -qx online; then
  pg_ctlcluster --skip-systemctl-redirect "$VERSION" "$NAME" start >&2
fi
for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p "$PORT" && break; sleep 0.5; done
if [ "$(psql -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = 'test'")" != "1" ]; then
  createdb -h 127.0.0.1 -p "$PORT" -U postgres test >&2
fi
echo "TESSERA_TEST_CHAOS_DATABASE_URL=postgres://postgres@127.0.0.1:$PORT/test"
echo "TESSERA_TEST_CHAOS_CLUSTER='$VERSION $NAME'"
