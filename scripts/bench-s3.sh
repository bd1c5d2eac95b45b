#!/bin/sh
# Dump to S3 (the test kit's in-process s3s-fs server on 127.0.0.1) against dump to a local
# directory, on the same throw-away database in the same run; prints both times, their ratio and
# pgark's peak resident memory. Needs PostgreSQL server binaries (see README, Tests).
#   PGARK_BENCH_ROWS=2000000 PGARK_BENCH_ROUNDS=3 PGARK_BENCH_JOBS=2 scripts/bench-s3.sh
set -eu
cd "$(dirname "$0")/.."
exec cargo bench --locked --bench s3_dump
