#!/usr/bin/env bash
# Validates the files in deploy/ with the tools that judge them:
# - the systemd service and timer with `systemd-analyze verify` (against the built pgark binary,
#   which the unit's ExecStart must name an executable for);
# - the Kubernetes manifest with `kubernetes-validate --strict` (PyPI; the API's own schemas,
#   unknown fields refused);
# - the shell scripts with `bash -n` and `shellcheck` (Debian's package);
# - the crontab's lines: five schedule fields each, every field a valid cron expression.
# Installs the validators if missing (as root on Debian, as .ci/run runs it).
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${PGARK_BIN:-${CARGO_TARGET_DIR:-target}/debug/pgark}"
if [[ ! -x $bin ]]; then
    cargo build --locked --quiet
fi
bin=$(realpath "$bin")

command -v systemd-analyze >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd; }
command -v shellcheck >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck; }
command -v kubernetes-validate >/dev/null || pip install --quiet kubernetes-validate

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for unit in deploy/systemd/*.service deploy/systemd/*.timer; do
    sed "s#/usr/local/bin/pgark#$bin#g" "$unit" >"$tmp/$(basename "$unit")"
done
echo "systemd-analyze verify deploy/systemd/*"
# It prints problems and exits non-zero on errors; a warning is a failure here too.
out=$(systemd-analyze verify "$tmp"/*.service "$tmp"/*.timer 2>&1) || { echo "$out"; exit 1; }
if [[ -n $out ]]; then
    echo "$out"
    exit 1
fi

echo "kubernetes-validate --strict deploy/kubernetes/*.yaml"
kubernetes-validate --strict --quiet deploy/kubernetes/*.yaml

echo "bash -n and shellcheck deploy/cron/*.sh"
for script in deploy/cron/*.sh; do
    bash -n "$script"
    shellcheck "$script"
done

echo "crontab schedules deploy/cron/*.crontab"
python3 - deploy/cron/*.crontab <<'PY'
import re, sys
ranges = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
names = [None, None, None, "jan feb mar apr may jun jul aug sep oct nov dec", "sun mon tue wed thu fri sat"]
def valid(field, low, high, words):
    for part in field.split(","):
        base, _, step = part.partition("/")
        if step and not step.isdigit():
            return False
        if base == "*":
            continue
        bounds = base.split("-")
        if len(bounds) > 2:
            return False
        for b in bounds:
            if words and b.lower() in words.split():
                continue
            if not b.isdigit() or not low <= int(b) <= high:
                return False
    return True
failed = False
for path in sys.argv[1:]:
    for number, line in enumerate(open(path), 1):
        line = line.strip()
        if not line or line.startswith("#") or re.match(r"^[A-Z_][A-Z0-9_]*=", line):
            continue
        fields = line.split(None, 5)
        if len(fields) < 6 or not all(valid(f, lo, hi, w) for f, (lo, hi), w in zip(fields, ranges, names)):
            print(f"{path}:{number}: not a crontab line (five schedule fields, then the command): {line}")
            failed = True
sys.exit(1 if failed else 0)
PY
echo "deploy files valid"
