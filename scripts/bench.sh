#!/usr/bin/env bash
# Measures pgark against pg_dump/pg_restore and against the floor, on one throwaway server, in
# one run, on the same data, and prints the ratios. Nothing here asserts a time.
#
#   scripts/bench.sh [--dataset tpch|pgbench|small|wide|partitions|all] [--scale N] [--jobs N]
#                    [--runs N] [--server-conf default|tuned] [--index-set plain|full]
#                    [--separate-client] [--latency MS] [--pgark-only] [--dump-only]
#   (PGARK_BIN=path/to/pgark measures that binary instead of building this checkout)
#
# Server configurations (--server-conf): `default` — shared_buffers=512MB,
# maintenance_work_mem=256MB, max_wal_size=8GB, checkpoint_timeout=1h; `tuned` — as an
# independent harness ran it: shared_buffers=2GB, max_wal_size=8GB, fsync=off,
# synchronous_commit=off. TPC-H's index set (--index-set): `plain` (the default) — primary keys,
# foreign keys, lineitem(l_shipdate) and orders(o_custkey); `full` adds orders(o_orderdate) and
# lineitem(l_partkey, l_suppkey), which speeds up the composite foreign key's check. With
# --separate-client the server runs on CPU 0 and every client (pgark, pg_dump, pg_restore, the
# floors' psql) on CPU 1 (taskset), so a 2-core machine shows what a dedicated client machine
# would; the default shares both cores. pgark's CPU seconds (user + system) per GB of COPY text
# are printed for its dump and restore. With --latency MS every client reaches the server over TCP
# through scripts/lib/latency_proxy.py, which holds each piece of data MS/2 ms in each direction:
# a server MS ms of round trip away (another zone, a managed service). The proxy forwards a few
# hundred MB/s at most, so use it with the data sets bound by round trips (small, partitions).
#
# Every run also dumps and restores with client-side encryption (an age recipient), so that its
# cost shows beside the clear backup of the same run. --pgark-only skips the floors and
# pg_dump/pg_restore (for measuring pgark against itself, e.g. encryption's cost); --dump-only
# skips every restore (for measuring a change to the dump against pg_dump and the floor).
#
# Data sets: TPC-H generated with tpchgen-cli (`cargo install tpchgen-cli`; default scale 1),
# pgbench (`pgbench -i`, default scale 100: one huge table; --scale 700 for a 10 GB table), 2,000
# small tables, `wide`: rows of 20 MB (8 tables of 6 by default), for peak memory (run it with
# --jobs 8), and `partitions`: one table in 1,000 partitions (--scale partitions) of 1,000 rows.
# Floors: dump = N sessions running plain `COPY ... TO STDOUT`, output discarded; restore = the
# best a scheduler could do with the server's own commands on this schema: the pre-data schema,
# then the COPY text of every table cut into pieces of at most 64 MB (whole rows) and dealt to N
# sessions of plain `COPY FROM`, largest first to the least loaded session; then every index and
# non-foreign-key constraint with N sessions busy (pg_restore -j N of those items alone), then
# statistics (vacuumdb --analyze-only -j N), then the foreign keys with N sessions, with those
# statistics. pg_restore gathers no statistics; pgark does, and so does the floor.
# Each step runs --runs times (default 3) and the median is printed. Steps are isolated from each
# other: before each one the server checkpoints and the kernel writes back dirty pages, and each
# restored database is dropped as soon as it is measured, so that autovacuum working through one
# tool's freshly restored tables does not slow the next tool down.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/pg.sh

dataset=tpch scale="" jobs=2 runs=3 pgark_only=false dump_only=false server_conf=default index_set=plain
separate=false latency=""
usage="usage: $0 [--dataset tpch|pgbench|small|wide|partitions|all] [--scale N] [--jobs N] [--runs N] [--server-conf default|tuned] [--index-set plain|full] [--separate-client] [--latency MS] [--pgark-only]"
while (($#)); do
    case $1 in
        --dataset) dataset=$2; shift 2 ;;
        --scale) scale=$2; shift 2 ;;
        --jobs) jobs=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --server-conf) server_conf=$2; shift 2 ;;
        --index-set) index_set=$2; shift 2 ;;
        --separate-client) separate=true; shift ;;
        --latency) latency=$2; shift 2 ;;
        --pgark-only) pgark_only=true; shift ;;
        --dump-only) dump_only=true; shift ;;
        *) echo "$usage" >&2; exit 2 ;;
    esac
done
case $server_conf in
    default) conf=("shared_buffers=512MB" "maintenance_work_mem=256MB" "max_wal_size=8GB" "checkpoint_timeout=1h") ;;
    tuned) conf=("shared_buffers=2GB" "max_wal_size=8GB" "fsync=off" "synchronous_commit=off") ;;
    *) echo "$usage" >&2; exit 2 ;;
esac
[[ $index_set == plain || $index_set == full ]] || { echo "$usage" >&2; exit 2; }
[[ -z $latency || $latency =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "$usage" >&2; exit 2; }

pgark=$(pgark_bin)
# Where the server and the clients run: both cores each, or one core each.
server_cpus=() client_cpus=()
if $separate; then
    command -v taskset >/dev/null || { echo "taskset not found: apt-get install -y util-linux" >&2; exit 1; }
    (($(nproc) >= 2)) || { echo "--separate-client needs two CPUs" >&2; exit 1; }
    server_cpus=(taskset -c 0) client_cpus=(taskset -c 1)
fi
PG_LAUNCH=("${server_cpus[@]}")
pg_start "${conf[@]}"
work=$PG_WORK/scratch
if [[ -n $latency ]]; then
    command -v python3 >/dev/null || { echo "python3 not found: apt-get install -y python3" >&2; exit 1; }
    proxy_port=6543
    python3 scripts/lib/latency_proxy.py "$proxy_port" "$PGHOST/.s.PGSQL.$PGPORT" "$latency" >"$work/proxy.log" 2>&1 &
    proxy_pid=$!
    trap 'kill "$proxy_pid" 2>/dev/null; pg_stop' EXIT
    # Ready once it says so; it exits (and this fails) if the port is taken.
    while ! grep -q listening "$work/proxy.log"; do
        kill -0 "$proxy_pid" 2>/dev/null || { cat "$work/proxy.log" >&2; exit 1; }
        sleep 0.1
    done
fi
# through_proxy CMD... — runs CMD as a client of the server (over the proxy with --latency).
through_proxy() {
    if [[ -n $latency ]]; then
        PGHOST=127.0.0.1 PGPORT=$proxy_port PGSSLMODE=disable "$@"
    else
        "$@"
    fi
}
# round_trip_ms — a query's round trip as clients see it: one session running 401 queries
# against one running 1 (the session's start cancels out), over 400.
round_trip_ms() {
    local n one many
    for n in 1 401; do
        yes 'SELECT 1;' | head -n "$n" >"$work/round_trips.$n.sql"
        through_proxy /usr/bin/time -f %e -o "$work/round_trips.$n.time" psql -X -q -d postgres -f "$work/round_trips.$n.sql" >/dev/null
    done
    one=$(cat "$work/round_trips.1.time") many=$(cat "$work/round_trips.401.time")
    awk -v a="$one" -v b="$many" 'BEGIN { printf "%.2f", (b - a) / 400 * 1000 }'
}
echo "== server: PostgreSQL $(psql -X -At -d postgres -c 'SHOW server_version'), --server-conf $server_conf (${conf[*]}); clients: $($separate && echo 'CPU 1, server CPU 0' || echo 'sharing every CPU with the server')$([[ -n $latency ]] && echo ", ${latency} ms round trip away (TCP proxy; measured $(round_trip_ms) ms a query)"); TPC-H index set: $index_set"
"$pgark" keygen --output "$work/identity.txt" >"$work/recipient.txt"
pg_dump=$(command -v pg_dump)
pg_restore=$(command -v pg_restore)

# time_cmd NAME CMD... — runs CMD, appends its wall seconds and peak RSS (KiB) to NAME's samples.
declare -A secs rss
time_cmd() {
    local name=$1; shift
    # Nothing left over from an earlier step: no checkpoint due, no dirty pages to write back.
    psql -X -q -d postgres -c CHECKPOINT
    sync
    through_proxy "${client_cpus[@]}" /usr/bin/time -f "%e %M %U %S" -o "$work/time.$name" "$@" >/dev/null
    local s m u k
    read -r s m u k <"$work/time.$name"
    secs[$name]+="$s " rss[$name]+="$m "
    cpu[$name]+="$(awk -v u="$u" -v k="$k" 'BEGIN { print u + k }') "
}
declare -A cpu
median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
size_of() { du -sb "$1" | cut -f1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }

load_tpch() {
    command -v tpchgen-cli >/dev/null || { echo "tpchgen-cli not found: cargo install tpchgen-cli" >&2; exit 1; }
    tpchgen-cli csv --scale-factor "${scale:-1}" --output-dir "$work/tpch" >/dev/null
    psql -X -q -d "$1" -f testdata/bench/tpch-schema.sql
    for table in region nation part supplier partsupp customer orders lineitem; do
        psql -X -q -d "$1" -c "\\copy $table FROM '$work/tpch/$table.csv' WITH (FORMAT csv, HEADER true)"
    done
    local indexes=testdata/bench/tpch-indexes-plain.sql
    [[ $index_set == full ]] && indexes=testdata/bench/tpch-indexes.sql
    psql -X -q -d "$1" -f "$indexes"
    rm -rf "$work/tpch"
}

load_pgbench() {
    "$PG_BIN/pgbench" -i -q -s "${scale:-100}" "$1" >/dev/null 2>&1
}

load_small() {
    psql -X -q -d "$1" -c "DO \$\$ BEGIN FOR i IN 1..${scale:-2000} LOOP
        EXECUTE format('CREATE TABLE small_%s (id integer PRIMARY KEY, name text, at timestamptz DEFAULT now())', i);
        EXECUTE format('INSERT INTO small_%s (id, name) SELECT g, md5(g::text) FROM generate_series(1, 100) g', i);
    END LOOP; END \$\$"
}

load_wide() {
    # 20 MB of text per row, stored compressed by TOAST; each row is one 20 MB COPY line. Eight
    # tables, so that eight sessions hold such rows at the same time.
    psql -X -q -d "$1" -c "DO \$\$ BEGIN FOR t IN 1..8 LOOP
        EXECUTE format('CREATE TABLE wide_%s (id integer PRIMARY KEY, body text)', t);
        EXECUTE format('INSERT INTO wide_%s SELECT g, repeat(md5((g * %s)::text), 655360)
                        FROM generate_series(1, %s) g', t, t, ${scale:-6});
    END LOOP; END \$\$"
}

load_partitions() {
    # One table, range-partitioned by id into ${scale:-1000} partitions of 1,000 rows.
    local parts=${scale:-1000}
    psql -X -q -d "$1" -c "CREATE TABLE events (id bigint, at timestamptz NOT NULL DEFAULT now(),
        kind text, payload text, PRIMARY KEY (id)) PARTITION BY RANGE (id)"
    psql -X -q -d "$1" -c "DO \$\$ BEGIN FOR p IN 0..$((parts - 1)) LOOP
        EXECUTE format('CREATE TABLE events_%s PARTITION OF events FOR VALUES FROM (%s) TO (%s)',
                       p, p * 1000, (p + 1) * 1000);
    END LOOP; END \$\$"
    psql -X -q -d "$1" -c "INSERT INTO events (id, kind, payload)
        SELECT g, 'k' || (g % 7), md5(g::text) FROM generate_series(0, $parts * 1000 - 1) g"
}

# The user tables of DB, largest first.
tables_of() {
    psql -X -At -d "$1" -c "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND n.nspname NOT LIKE 'pg\\_%' ORDER BY pg_table_size(c.oid) DESC"
}

# split_jobs DB PREFIX SUFFIX OUT — writes OUT.0 … OUT.(jobs-1), one SQL file per session, with
# the line PREFIX<table>SUFFIX for each table, dealt out largest first. One psql session per
# job, as a real client would use, so the floor does not pay a process start per table.
split_jobs() {
    rm -f "$4".*
    local i=0 t
    for t in $(tables_of "$1"); do
        printf '%s%s%s\n' "$2" "$t" "$3" >>"$4.$((i % jobs))"
        i=$((i + 1))
    done
}

run_sessions() {  # run_sessions DB FILES_PREFIX
    ls "$2".* | xargs -P "$jobs" -I{} psql -X -q -v ON_ERROR_STOP=1 -d "$1" -f {}
}

floor_restore() {  # floor_restore TARGET_DB PG_DUMP_DIR
    createdb "$1"
    "$pg_restore" --section=pre-data -d "$1" "$2"
    run_sessions "$1" "$work/floor_restore.sql"
    "$pg_restore" -L "$work/floor_indexes.list" -j "$jobs" -d "$1" "$2"
    vacuumdb --analyze-only --quiet -j "$jobs" -d "$1"
    "$pg_restore" -L "$work/floor_foreign_keys.list" -j "$jobs" -d "$1" "$2"
}
export -f run_sessions floor_restore
export work jobs pg_restore

# plan_floor_restore DB PG_DUMP_DIR — the restore floor's COPY sessions and post-data lists:
# each table's COPY text in pieces of at most 64 MB of whole rows (COPY text escapes newlines,
# so a line is a row), dealt largest first to the session with the fewest bytes so far.
plan_floor_restore() {
    local t
    rm -rf "$work/pieces" "$work"/floor_restore.sql.*
    mkdir -p "$work/pieces"
    for t in $(tables_of "$1"); do
        split -C 64M -d -a 4 "$work/plain/$t" "$work/pieces/$t."
    done
    find "$work/pieces" -type f -printf '%s %p\n' | sort -rn | awk -v jobs="$jobs" -v out="$work/floor_restore.sql" '
        { best = 0; for (i = 1; i < jobs; i++) if (load[i] < load[best]) best = i
          load[best] += $1
          table = $2; sub(/.*\//, "", table); sub(/\.[0-9]+$/, "", table)
          printf "\\copy %s FROM '\''%s'\''\n", table, $2 >> (out "." best) }'
    "$pg_restore" -l "$2" >"$work/floor_all.list"
    grep -E ' (INDEX|CONSTRAINT|INDEX ATTACH) ' "$work/floor_all.list" | grep -v ' FK CONSTRAINT ' >"$work/floor_indexes.list" || true
    grep -E ' FK CONSTRAINT ' "$work/floor_all.list" >"$work/floor_foreign_keys.list" || true
}

run_dataset() {
    local ds=$1 db=bench_$1
    echo "== $ds: loading"
    createdb "$db"
    "load_$ds" "$db"
    psql -X -q -d "$db" -c "VACUUM ANALYZE" -c "CHECKPOINT"
    local size; size=$(psql -X -At -d "$db" -c "SELECT pg_size_pretty(pg_database_size(current_database()))")
    echo "== $ds: database $size; measuring with --jobs $jobs"

    split_jobs "$db" "COPY " " TO STDOUT;" "$work/floor_dump.sql"
    mkdir -p "$work/plain"
    local t
    for t in $(tables_of "$db"); do psql -X -q -d "$db" -c "COPY $t TO STDOUT" >"$work/plain/$t"; done

    secs=() rss=() cpu=()
    local run pgdump_size pgark_size
    for ((run = 1; run <= runs; run++)); do
        echo "== $ds: run $run of $runs"
        rm -rf "$work/pgdump" "$work/pgdump_z0" "$work/pgark" "$work/pgark_age"
        if ! $pgark_only; then
            time_cmd floor_dump bash -c "run_sessions $db $work/floor_dump.sql"
            time_cmd pg_dump "$pg_dump" -Fd -j "$jobs" -f "$work/pgdump" "$db"
            time_cmd pg_dump_z0 "$pg_dump" -Fd -j "$jobs" -Z0 -f "$work/pgdump_z0" "$db"
        fi
        # Clear and encrypted alternate which goes first, so neither always finds the caches
        # the other left.
        local order="clear age"
        ((run % 2)) || order="age clear"
        local kind
        for kind in $order; do
            if [[ $kind == clear ]]; then
                time_cmd pgark_dump "$pgark" dump "dbname=$db" "$work/pgark" --jobs "$jobs" --quiet
            else
                time_cmd pgark_dump_age "$pgark" dump "dbname=$db" "$work/pgark_age" --jobs "$jobs" --quiet \
                    --encrypt-to "$(cat "$work/recipient.txt")"
            fi
        done
        pgark_size=$(size_of "$work/pgark")

        if ! $pgark_only; then
            pgdump_size=$(size_of "$work/pgdump")
        fi
        $dump_only && continue
        if ! $pgark_only; then
            plan_floor_restore "$db" "$work/pgdump"
            time_cmd floor_restore bash -c "floor_restore ${db}_floor $work/pgdump"
            dropdb "${db}_floor"
            createdb "${db}_pgr"
            time_cmd pg_restore "$pg_restore" -j "$jobs" -d "${db}_pgr" "$work/pgdump"
            dropdb "${db}_pgr"
        fi
        for kind in $order; do
            if [[ $kind == clear ]]; then
                time_cmd pgark_restore "$pgark" restore "$work/pgark/latest" --target "dbname=${db}_pgark" --create --jobs "$jobs" --quiet
            else
                time_cmd pgark_restore_age "$pgark" restore "$work/pgark_age/latest" --target "dbname=${db}_pgark" --create --jobs "$jobs" --quiet \
                    --identity "$work/identity.txt"
            fi
            dropdb "${db}_pgark"
        done
    done
    local name
    declare -A samples
    for name in "${!secs[@]}"; do
        samples[$name]=${secs[$name]}
        secs[$name]=$(median "${secs[$name]}") rss[$name]=$(median "${rss[$name]}")
        cpu[$name]=$(median "${cpu[$name]}")
    done
    # pgark's own CPU time per GB of COPY text (the backup's raw bytes).
    local raw_gb
    raw_gb=$(sed -n 's/.*"raw_bytes": *\([0-9]*\).*/\1/p' "$work"/pgark/*/manifest.json | head -n 1 \
        | awk '{ printf "%.6f", $1 / 1e9 }')
    per_gb() { awk -v c="${cpu[$1]}" -v g="$raw_gb" 'BEGIN { if (g > 0) printf "%.1f", c / g; else print "-" }'; }

    printf '\n%-20s %9s %10s %12s %10s\n' "$ds" "seconds" "vs floor" "vs pg_dump" "peak RSS"
    row() { printf '%-20s %9.2f %10s %12s %6d MiB\n' "$1" "${secs[$2]}" "$3" "$4" "$((rss[$2] / 1024))"; }
    if $pgark_only; then
        row "pgark dump" pgark_dump "" ""
        row "pgark dump (age)" pgark_dump_age "" "$(ratio "${secs[pgark_dump_age]}" "${secs[pgark_dump]}") of clear"
        row "pgark restore" pgark_restore "" ""
        row "pgark restore (age)" pgark_restore_age "" "$(ratio "${secs[pgark_restore_age]}" "${secs[pgark_restore]}") of clear"
        echo "seconds of each run (the table shows the median of $runs):"
        for name in pgark_dump pgark_dump_age pgark_restore pgark_restore_age; do
            printf '  %-17s %s\n' "$name" "${samples[$name]}"
        done
        rm -rf "$work/pgark" "$work/pgark_age" "$work/plain"
        dropdb "$db"
        return
    fi
    row "dump floor" floor_dump "1.00x" ""
    row "pg_dump -Fd" pg_dump "$(ratio "${secs[pg_dump]}" "${secs[floor_dump]}")" "1.00x"
    row "pg_dump -Fd -Z0" pg_dump_z0 "$(ratio "${secs[pg_dump_z0]}" "${secs[floor_dump]}")" "$(ratio "${secs[pg_dump_z0]}" "${secs[pg_dump]}")"
    row "pgark dump" pgark_dump "$(ratio "${secs[pgark_dump]}" "${secs[floor_dump]}")" "$(ratio "${secs[pgark_dump]}" "${secs[pg_dump]}")"
    row "pgark dump (age)" pgark_dump_age "$(ratio "${secs[pgark_dump_age]}" "${secs[floor_dump]}")" "$(ratio "${secs[pgark_dump_age]}" "${secs[pg_dump]}")"
    $dump_only || row "restore floor" floor_restore "1.00x" ""
    $dump_only || row "pg_restore" pg_restore "$(ratio "${secs[pg_restore]}" "${secs[floor_restore]}")" "1.00x"
    $dump_only || row "pgark restore" pgark_restore "$(ratio "${secs[pgark_restore]}" "${secs[floor_restore]}")" "$(ratio "${secs[pgark_restore]}" "${secs[pg_restore]}")"
    $dump_only || row "pgark restore (age)" pgark_restore_age "$(ratio "${secs[pgark_restore_age]}" "${secs[floor_restore]}")" "$(ratio "${secs[pgark_restore_age]}" "${secs[pg_restore]}")"
    if $dump_only; then
        printf 'pgark CPU (user + system) per GB of COPY text: dump %s s (%s GB)\n' \
            "$(per_gb pgark_dump)" "$raw_gb"
    else
        printf 'pgark CPU (user + system) per GB of COPY text: dump %s s, restore %s s (%s GB)\n' \
            "$(per_gb pgark_dump)" "$(per_gb pgark_restore)" "$raw_gb"
    fi
    printf 'archive size: pgark %s KiB, pg_dump -Fd %s KiB (%s)\n' \
        "$((pgark_size / 1024))" "$((pgdump_size / 1024))" "$(ratio "$pgark_size" "$pgdump_size")"
    echo "seconds of each run (the table shows the median of $runs):"
    for name in floor_dump pg_dump pg_dump_z0 pgark_dump pgark_dump_age floor_restore pg_restore pgark_restore pgark_restore_age; do
        [[ -v samples[$name] ]] || continue
        printf '  %-17s %s\n' "$name" "${samples[$name]}"
    done
    echo

    rm -rf "$work/pgdump" "$work/pgdump_z0" "$work/pgark" "$work/pgark_age" "$work/plain" "$work/pieces"
    dropdb "$db"
}

case $dataset in
    all) for ds in tpch pgbench small wide partitions; do run_dataset "$ds"; done ;;
    tpch|pgbench|small|wide|partitions) run_dataset "$dataset" ;;
    *) echo "unknown data set $dataset" >&2; exit 2 ;;
esac
