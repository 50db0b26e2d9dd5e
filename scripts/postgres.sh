#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for the tests, in a temporary directory, on loopback.
#
#   eval "$(bash scripts/postgres.sh start)"   # prints export lines: KEYWARD_TEST_POSTGRES_URL, KEYWARD_TEST_PGDATA
#   bash scripts/postgres.sh stop "$KEYWARD_TEST_PGDATA"
#
# PostgreSQL refuses to run as root: when this script runs as root the cluster belongs to the
# `postgres` user (created by the Debian package). Authentication is `trust` on loopback only;
# fsync stays on, so crash tests (`pg_ctl restart -m immediate`) test real durability.
set -euo pipefail
bin=/usr/lib/postgresql/15/bin
command=${1:-}
case "$command" in
  start)
    port=${KEYWARD_TEST_PGPORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
    dir=$(mktemp -d /tmp/keyward-pg.XXXXXX)
    chmod 755 "$dir"
    run=()
    if [ "$(id -u)" = 0 ]; then
      chown postgres:postgres "$dir"
      run=(runuser -u postgres --)
    fi
    "${run[@]}" "$bin/initdb" -D "$dir/data" -A trust -U keyward --no-sync >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200 -c shared_buffers=128MB" start >/dev/null \
      || { cat "$dir/server.log" >&2; exit 1; }
    "${run[@]}" "$bin/createdb" -h 127.0.0.1 -p "$port" -U keyward keyward
    echo "export KEYWARD_TEST_PGDATA=$dir"
    echo "export KEYWARD_TEST_PGBIN=$bin"
    echo "export KEYWARD_TEST_PGPORT=$port"
    echo "export KEYWARD_TEST_POSTGRES_URL=postgres://keyward@127.0.0.1:$port/keyward"
    ;;
  stop)
    dir=${2:?usage: postgres.sh stop DIR}
    run=()
    [ "$(id -u)" = 0 ] && run=(runuser -u postgres --)
    "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
  *)
    echo "usage: postgres.sh start | stop DIR" >&2
    exit 2
    ;;
esac
