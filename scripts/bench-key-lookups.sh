#!/usr/bin/env bash
# Measures what key summaries cost and what they buy, on one throwaway server:
# - the cost: dump time and archive size with key membership filters (the default) and without
#   (`--no-key-filters`), on TPC-H (primary keys as in testdata/bench/tpch-indexes.sql, composite
#   ones on lineitem and partsupp) and on a table keyed by random uuids;
# - the gain: a point lookup (`restore --table ... --where ... --dry-run`) by lineitem's composite
#   key and by a random uuid, chunks read and seconds, with and without filters.
# Nothing here asserts a time; medians of --runs runs (default 3) with the spread (min-max).
#
#   scripts/bench-key-lookups.sh [--scale N] [--uuid-rows N] [--runs N]
#   (PGARK_BIN=path/to/pgark measures that binary instead of building this checkout)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/pg.sh

scale=1 uuid_rows=3000000 runs=3
while (($#)); do
    case $1 in
        --scale) scale=$2; shift 2 ;;
        --uuid-rows) uuid_rows=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        *) echo "usage: $0 [--scale N] [--uuid-rows N] [--runs N]" >&2; exit 2 ;;
    esac
done
command -v tpchgen-cli >/dev/null || { echo "tpchgen-cli not found: cargo install tpchgen-cli" >&2; exit 1; }
pgark=$(pgark_bin)
pg_start "shared_buffers=512MB" "max_wal_size=8GB" "checkpoint_timeout=1h"
work=$PG_WORK/scratch

psql -X -q -d postgres -c "CREATE DATABASE tpch" -c "CREATE DATABASE uuids"
tpchgen-cli csv --scale-factor "$scale" --output-dir "$work/tpch" >/dev/null
psql -X -q -d tpch -f testdata/bench/tpch-schema.sql
for table in region nation part supplier partsupp customer orders lineitem; do
    psql -X -q -d tpch -c "\\copy $table FROM '$work/tpch/$table.csv' WITH (FORMAT csv, HEADER true)"
done
psql -X -q -d tpch -f testdata/bench/tpch-indexes.sql
rm -rf "$work/tpch"
psql -X -q -d uuids -c "CREATE TABLE sessions (id uuid PRIMARY KEY, user_id bigint, started timestamptz, agent text)" \
    -c "INSERT INTO sessions SELECT gen_random_uuid(), (random() * 1e6)::bigint, now() - random() * interval '90 days', md5(random()::text) FROM generate_series(1, $uuid_rows)" \
    -c "VACUUM ANALYZE sessions"
lookup_uuid=$(psql -X -At -d uuids -c "SELECT id FROM sessions OFFSET $((uuid_rows / 2)) LIMIT 1")

median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
spread() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print lo "-" hi }'; }
declare -A secs cpu size
# dump NAME DB ARGS...
dump() {
    local name=$1 db=$2; shift 2
    psql -X -q -d postgres -c CHECKPOINT
    sync
    rm -rf "$work/$name"
    /usr/bin/time -f "%e %U %S" -o "$work/time" "$pgark" dump "postgresql:///$db?host=$PGHOST" "$work/$name" --jobs 2 "$@" >/dev/null 2>&1
    local wall user sys
    read -r wall user sys <"$work/time"
    secs[$name]+="$wall "
    cpu[$name]+="$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }') "
    size[$name]=$(du -sb "$work/$name" | cut -f1)
}
for ((run = 1; run <= runs; run++)); do
    dump tpch-filters tpch
    dump tpch-none tpch --no-key-filters
    dump uuid-filters uuids
    dump uuid-none uuids --no-key-filters
done

echo "dump (median of $runs; seconds wall and pgark CPU, min-max) and archive size:"
for pair in tpch uuid; do
    with=$(median "${secs[$pair-filters]}") without=$(median "${secs[$pair-none]}")
    cw=$(median "${cpu[$pair-filters]}") co=$(median "${cpu[$pair-none]}")
    awk -v n="$pair" -v w="$with" -v o="$without" -v ws="${size[$pair-filters]}" -v os="${size[$pair-none]}" \
        -v wr="$(spread "${secs[$pair-filters]}")" -v or="$(spread "${secs[$pair-none]}")" \
        -v cw="$cw" -v co="$co" -v cwr="$(spread "${cpu[$pair-filters]}")" -v cor="$(spread "${cpu[$pair-none]}")" 'BEGIN {
        printf "  %-5s with filters: wall %6.2f s (%s), CPU %6.2f s (%s), %d bytes\n", n, w, wr, cw, cwr, ws
        printf "  %-5s without:      wall %6.2f s (%s), CPU %6.2f s (%s), %d bytes\n", n, o, or, co, cor, os
        printf "  %-5s filters cost: wall %+.1f%%, pgark CPU %+.1f%%, size %+.2f%%\n", n, (w / o - 1) * 100, (cw / co - 1) * 100, (ws / os - 1) * 100 }'
done

echo "point lookups (restore --dry-run into the source database):"
lookup() {
    local label=$1 backup=$2 db=$3 table=$4 where=$5
    local dir
    dir=$(ls -d "$work/$backup"/*/ | head -n 1)
    local started ended line
    started=$(date +%s.%N)
    line=$("$pgark" restore "$dir" --target "postgresql:///$db?host=$PGHOST" --table "$table" --where "$where" \
        --conflict skip --dry-run 2>/dev/null | grep "chunks read" || true)
    ended=$(date +%s.%N)
    awk -v l="$label" -v s="$started" -v e="$ended" -v r="${line#*; }" 'BEGIN { printf "  %-34s %5.2f s  %s\n", l, e - s, r }'
}
lookup "lineitem key, with filters" tpch-filters tpch public.lineitem "l_orderkey = 1234567 AND l_linenumber = 2"
lookup "lineitem key, without" tpch-none tpch public.lineitem "l_orderkey = 1234567 AND l_linenumber = 2"
lookup "lineitem l_orderkey only" tpch-filters tpch public.lineitem "l_orderkey = 1234567"
lookup "random uuid, with filters" uuid-filters uuids public.sessions "id = '$lookup_uuid'"
lookup "random uuid, without" uuid-none uuids public.sessions "id = '$lookup_uuid'"
