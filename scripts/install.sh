#!/usr/bin/env bash
# Builds pgark (release) and installs it with its shell completions and man pages:
#
#   scripts/install.sh                 # into /usr/local (as root)
#   PREFIX=$HOME/.local scripts/install.sh
#   DESTDIR=/tmp/pkg scripts/install.sh   # staged, for packaging
#
# Installs $PREFIX/bin/pgark, completions for bash ($PREFIX/share/bash-completion/completions),
# zsh ($PREFIX/share/zsh/site-functions) and fish ($PREFIX/share/fish/vendor_completions.d), and
# man pages ($PREFIX/share/man/man1), all generated from the binary's own command-line
# definition. PGARK_BIN installs an already built binary instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."

prefix="${PREFIX:-/usr/local}"
root="${DESTDIR:-}$prefix"
bin="${PGARK_BIN:-}"
if [[ -z $bin ]]; then
    cargo build --release --locked
    bin="${CARGO_TARGET_DIR:-target}/release/pgark"
fi

install -d "$root/bin" "$root/share/bash-completion/completions" \
    "$root/share/zsh/site-functions" "$root/share/fish/vendor_completions.d" \
    "$root/share/man/man1"
install -m 0755 "$bin" "$root/bin/pgark"
"$bin" completions bash >"$root/share/bash-completion/completions/pgark"
"$bin" completions zsh >"$root/share/zsh/site-functions/_pgark"
"$bin" completions fish >"$root/share/fish/vendor_completions.d/pgark.fish"
"$bin" man "$root/share/man/man1" >/dev/null
echo "installed $("$bin" --version) into $root"
