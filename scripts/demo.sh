#!/usr/bin/env bash
# Builds pgark, starts a throwaway PostgreSQL server in a temporary directory, loads a demo
# database (testdata/fixture.sql), dumps it, restores it into a new database and compares the
# row counts. Everything is removed at the end. Usage: scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

pg_bin=${PGARK_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
if [[ -z $pg_bin || ! -x $pg_bin/initdb ]] || ! command -v psql >/dev/null; then
    if [[ $(id -u) == 0 ]]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql postgresql-client
        pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    else
        echo "PostgreSQL is not installed: run 'sudo apt-get install -y postgresql' (or set PGARK_PG_BIN)" >&2
        exit 1
    fi
fi

cargo build --release --locked
pgark=$PWD/target/release/pgark

work=$(mktemp -d)
chmod 755 "$work"
as_server_user=()
if [[ $(id -u) == 0 ]]; then
    # initdb refuses to run as root: the server runs as the postgres system user.
    chown postgres "$work"
    as_server_user=(runuser -u postgres --)
fi
cleanup() {
    "${as_server_user[@]}" "$pg_bin/pg_ctl" -D "$work/data" stop -m immediate >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

"${as_server_user[@]}" "$pg_bin/initdb" -D "$work/data" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
"${as_server_user[@]}" "$pg_bin/pg_ctl" -D "$work/data" -w -l "$work/server.log" \
    -o "-k $work -c listen_addresses='' -c fsync=off" start >/dev/null
export PGHOST=$work PGUSER=postgres PGPORT=5432

psql -X -q -c "CREATE DATABASE demo"
psql -X -q -v ON_ERROR_STOP=1 -d demo -f testdata/fixture.sql >/dev/null
echo "== demo database loaded; dumping"
mkdir -m 777 "$work/backups"
"$pgark" dump "dbname=demo" "$work/backups" --jobs 2 --quiet
backup=$(ls -d "$work"/backups/*/ | head -n 1)
echo "== backup files"
(cd "$backup" && find . -type f | sort)
echo "== restoring into a new database"
"$pgark" restore "$work/backups/latest" --target "dbname=demo_restored" --create --jobs 2 --quiet

# One line per table: its name and row count (psql runs each generated query with \gexec).
cat >"$work/count_rows.sql" <<'SQL'
SELECT format('SELECT %L, count(*) FROM ONLY %s', c.oid::regclass::text, c.oid::regclass)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_%'
ORDER BY c.oid::regclass::text
\gexec
SQL
psql -X -At -F ' ' -d demo -f "$work/count_rows.sql" >"$work/source.txt"
psql -X -At -F ' ' -d demo_restored -f "$work/count_rows.sql" >"$work/restored.txt"
if diff -u "$work/source.txt" "$work/restored.txt"; then
    echo "== row counts match for all $(wc -l <"$work/source.txt") tables"
else
    echo "== row counts differ" >&2
    exit 1
fi
