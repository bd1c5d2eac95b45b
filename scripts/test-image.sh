#!/usr/bin/env bash
# Builds the container image (scripts/build-image.sh) and runs pgark from inside it, as its
# non-root user: --version, then a dump of a demo database on a throwaway server (reached through
# its socket directory, mounted into the container) and a restore of that backup into a new
# database, whose row counts must equal the source's. CI runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/pg.sh
export STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot

image=$(scripts/build-image.sh)
echo "== image $image"
entrypoint=$(buildah inspect --type image --format '{{.OCIv1.Config.Entrypoint}} {{.OCIv1.Config.User}}' "$image")
[[ $entrypoint == '[/usr/local/bin/pgark] 65532:65532' ]] || {
    echo "unexpected entrypoint and user: $entrypoint" >&2
    exit 1
}

pg_start
work=$PG_WORK/scratch
ctr=$(buildah from "$image")
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true; pg_stop' EXIT
inside() {
    buildah run --user 65532:65532 --volume "$PG_WORK:$PG_WORK" \
        --env PGHOST="$PGHOST" --env PGPORT="$PGPORT" --env PGUSER="$PGUSER" \
        "$ctr" -- /usr/local/bin/pgark "$@"
}

inside --version
psql -X -q -c "CREATE DATABASE demo"
psql -X -q -v ON_ERROR_STOP=1 -d demo -f testdata/fixture.sql >/dev/null
inside dump "dbname=demo" "$work/backups" --jobs 2 --quiet
inside restore "$work/backups/latest" --target "dbname=demo_restored" --create --jobs 2 --quiet

count_rows="SELECT string_agg(format('%s %s', c.oid::regclass, (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM ONLY %s', c.oid::regclass), false, true, '')))[1]), E'\n' ORDER BY c.oid::regclass::text) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'"
source_counts=$(psql -X -At -d demo -c "$count_rows")
restored_counts=$(psql -X -At -d demo_restored -c "$count_rows")
if [[ -z $source_counts || $source_counts != "$restored_counts" ]]; then
    echo "row counts differ:" >&2
    diff <(echo "$source_counts") <(echo "$restored_counts") >&2 || true
    exit 1
fi
echo "== dump and restore from inside the image: row counts match for $(wc -l <<<"$source_counts") tables"
