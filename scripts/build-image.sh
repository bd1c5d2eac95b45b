#!/usr/bin/env bash
# Builds the pgark container image without pulling a base image from any registry: buildah
# (Debian's package) assembles it from scratch — the release binary, the shared libraries it
# links (as ldd lists them), the CA bundle, a passwd/group naming the non-root user 65532 and a
# /tmp — with pgark as the entrypoint, the same image the Dockerfile describes. Prints the image
# name (IMAGE, default localhost/pgark:<version>). PGARK_BIN uses an already built binary.
# Needs root (buildah's vfs storage, no daemon).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/pg.sh

command -v buildah >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah >/dev/null
}
export STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot

bin=$(pgark_bin)
version=$("$bin" --version | awk '{print $2}')
image=${IMAGE:-localhost/pgark:$version}

root=$(mktemp -d)
ctr=$(buildah from scratch)
trap 'rm -rf "$root"; buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT

install -D -m 0755 "$bin" "$root/usr/local/bin/pgark"
strip "$root/usr/local/bin/pgark" 2>/dev/null || true
# The dynamic loader and every library the binary links, at the paths it looks for them.
for lib in $(ldd "$bin" | awk '/=> \// {print $3} /^[[:space:]]*\// {print $1}'); do
    install -D -m 0755 "$(realpath "$lib")" "$root$lib"
done
install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
mkdir -p "$root/etc" "$root/tmp"
chmod 1777 "$root/tmp"
echo 'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$root/etc/passwd"
echo 'nonroot:x:65532:' >"$root/etc/group"
install -d -m 0755 -o 65532 -g 65532 "$root/home/nonroot"

buildah copy "$ctr" "$root" / >/dev/null
buildah config \
    --entrypoint '["/usr/local/bin/pgark"]' --cmd '["--help"]' \
    --user 65532:65532 --workingdir /tmp \
    --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --label org.opencontainers.image.title=pgark \
    --label org.opencontainers.image.version="$version" \
    "$ctr"
buildah commit --quiet "$ctr" "$image" >/dev/null
echo "$image"
