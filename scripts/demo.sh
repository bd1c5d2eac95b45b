#!/usr/bin/env bash
# Builds pgark, starts a throwaway PostgreSQL server in a temporary directory, loads a demo
# database (testdata/fixture.sql), dumps it, restores it into a new database and compares the
# row counts. Everything is removed at the end. Usage: scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib/pg.sh

cargo build --release --locked
pgark=$PWD/target/release/pgark

pg_start
work=$PG_WORK/scratch

psql -X -q -c "CREATE DATABASE demo"
psql -X -q -v ON_ERROR_STOP=1 -d demo -f testdata/fixture.sql >/dev/null
echo "== demo database loaded; dumping"
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
