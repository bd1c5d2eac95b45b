# Shared by the scripts: find the PostgreSQL binaries (installing them on Debian when run as
# root), and start a throwaway server in a temporary directory that is removed on exit.
# Source it, then call `pg_start`; afterwards PGHOST/PGPORT/PGUSER point at the server and
# $PG_WORK is a scratch directory.

pg_find_bin() {
    PG_BIN=${PGARK_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
    if [[ -z $PG_BIN || ! -x $PG_BIN/initdb ]] || ! command -v psql >/dev/null; then
        if [[ $(id -u) == 0 ]]; then
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql postgresql-client >/dev/null
            PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
        else
            echo "PostgreSQL is not installed: run 'sudo apt-get install -y postgresql' (or set PGARK_PG_BIN)" >&2
            exit 1
        fi
    fi
}

# pgark_bin — prints the pgark to measure: $PGARK_BIN, or this checkout's, built for release.
pgark_bin() {
    if [[ -n ${PGARK_BIN:-} ]]; then
        echo "$PGARK_BIN"
    else
        cargo build --release --locked --quiet
        echo "$PWD/target/release/pgark"
    fi
}

# pg_start [extra postgres -c settings...]
pg_start() {
    [[ -v PG_LAUNCH ]] || PG_LAUNCH=()
    pg_find_bin
    PG_WORK=$(mktemp -d)
    chmod 755 "$PG_WORK"
    PG_AS=()
    if [[ $(id -u) == 0 ]]; then
        # initdb refuses to run as root: the server runs as the postgres system user.
        chown postgres "$PG_WORK"
        PG_AS=(runuser -u postgres --)
    fi
    trap pg_stop EXIT
    "${PG_AS[@]}" "$PG_BIN/initdb" -D "$PG_WORK/data" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
    local opts="-k $PG_WORK -c listen_addresses='' -c fsync=off"
    for setting in "$@"; do opts+=" -c $setting"; done
    # PG_LAUNCH (e.g. `taskset -c 0`) runs the server under a wrapper its processes inherit.
    "${PG_LAUNCH[@]}" "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_WORK/data" -w -l "$PG_WORK/server.log" -o "$opts" start >/dev/null
    export PGHOST=$PG_WORK PGUSER=postgres PGPORT=5432
    mkdir -m 777 "$PG_WORK/scratch"
}

pg_stop() {
    "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_WORK/data" stop -m immediate >/dev/null 2>&1 || true
    rm -rf "$PG_WORK"
}
