#!/usr/bin/env bash
# Peak memory against database size: pgark dumps and restores pgbench databases of two scales
# (default 70 and 700: about 1 GB and 10 GB of COPY text, nearly all in one table) on one
# throwaway server, and prints each run's wall time and peak resident memory (GNU time's
# maximum RSS). The claim it checks (SPEC I4): memory depends on the chunk size and --jobs, not
# on the size of the data. Nothing here asserts a number. Each step runs --runs times (default
# 3): a single dump's peak RSS varies by several MiB from run to run, so compare medians.
#
#   scripts/bench-rss-size.sh [--scales "70 700"] [--jobs N] [--runs N]
#   (PGARK_BIN=path/to/pgark measures that binary instead of building this checkout)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/pg.sh

scales="70 700" jobs=2 runs=3
while (($#)); do
    case $1 in
        --scales) scales=$2; shift 2 ;;
        --jobs) jobs=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        *) echo "usage: $0 [--scales \"70 700\"] [--jobs N] [--runs N]" >&2; exit 2 ;;
    esac
done
pgark=$(pgark_bin)
pg_start "shared_buffers=512MB" "maintenance_work_mem=256MB" "max_wal_size=8GB" "checkpoint_timeout=1h"
work=$PG_WORK/scratch

# measure CMD... — prints "seconds peak-KiB" of CMD.
measure() {
    psql -X -q -d postgres -c CHECKPOINT
    sync
    /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null
    cat "$work/time"
}

median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

printf '%-7s %9s %-5s %10s %12s %10s %12s\n' scale "tables" run "dump s" "dump RSS" "restore s" "restore RSS"
for scale in $scales; do
    db=pgbench_$scale
    createdb "$db"
    pgbench -i -q -s "$scale" "$db" >/dev/null 2>&1
    psql -X -q -d "$db" -c "VACUUM ANALYZE"
    raw=$(psql -X -At -d "$db" -c "SELECT pg_size_pretty(sum(pg_relation_size(c.oid))) FROM pg_class c WHERE relkind = 'r' AND relname LIKE 'pgbench_%'")
    dump_rss="" restore_rss=""
    for ((run = 1; run <= runs; run++)); do
        rm -rf "$work/backups_$scale"
        read -r ds dm < <(measure "$pgark" dump "dbname=$db" "$work/backups_$scale" --jobs "$jobs" --no-progress -q)
        backup=$(ls -d "$work/backups_$scale"/*/)
        read -r rs rm < <(measure "$pgark" restore "$backup" --target "dbname=${db}_restored" --create --jobs "$jobs" --no-progress -q)
        printf '%-7s %9s %-5s %10s %9d MiB %10s %9d MiB\n' "$scale" "$raw" "$run" "$ds" "$((dm / 1024))" "$rs" "$((rm / 1024))"
        dump_rss+="$dm " restore_rss+="$rm "
        dropdb "${db}_restored"
    done
    printf '%-7s %9s %-5s %10s %9d MiB %10s %9d MiB\n' "$scale" "$raw" median "" \
        "$(($(median "$dump_rss") / 1024))" "" "$(($(median "$restore_rss") / 1024))"
    dropdb "$db"
    rm -rf "$work/backups_$scale"
done
