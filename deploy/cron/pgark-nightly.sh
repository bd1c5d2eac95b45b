#!/usr/bin/env bash
# The nightly run cron starts: a dump, then retention, then a freshness check, each step's exit
# code kept. Options come from PGARK_CONFIG / PGARK_* variables (see pgark.crontab).
set -euo pipefail

: "${PGARK_DEST:?set PGARK_DEST to where the backups go}"
status=0
# SOURCE and DEST come from PGARK_SOURCE (or the config file) and PGARK_DEST.
pgark dump --timeout 5h --metrics-file /var/lib/node_exporter/textfile/pgark.prom || status=$?
pgark prune --keep-daily 7 --keep-weekly 5 --keep-monthly 12 || status=$((status ? status : $?))
pgark ls --check-max-age 26h >/dev/null || status=$((status ? status : $?))
exit "$status"
