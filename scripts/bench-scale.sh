#!/usr/bin/env bash
# The scale simulator (benches/scale.rs): time and peak memory of the metadata work of `ls` (1,000
# backups), `show`, `verify --metadata-only` and the planning of a one-table and a whole restore,
# on a synthetic backup of 100,000 tables and 1,000,000 chunks (about 1 TB of sparse data
# objects, no disk). Settings: PGARK_SCALE_TABLES, PGARK_SCALE_CHUNKS, PGARK_SCALE_ROUNDS.
# Nothing here asserts a time.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --locked --bench scale
