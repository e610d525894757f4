#!/usr/bin/env bash
# Build the application image (Dockerfile) without a daemon or a registry: buildah with vfs
# storage and chroot isolation, from a Debian base made by mmdebstrap and imported locally.
#
#   IMAGE       the tag to build              (default localhost/app:dev)
#   IMAGE_BASE  a base image to use instead   (e.g. python:3.11-slim-bookworm where a registry is
#               reachable); unset: localhost/app-base:bookworm, made once by mmdebstrap
#   IMAGE_CA_DIR  folder of extra CA certificates (*.crt) pip must trust while building
#               (default /usr/local/share/ca-certificates: where an intercepting proxy's CA is)
#
# Prints the build time and the image size at the end. Safe to run again: unchanged steps are
# reused from the layer cache.
set -euo pipefail
cd "$(dirname "$0")/../.."

IMAGE=${IMAGE:-localhost/app:dev}
IMAGE_BASE=${IMAGE_BASE:-}
IMAGE_CA_DIR=${IMAGE_CA_DIR:-/usr/local/share/ca-certificates}
LOCAL_BASE=localhost/app-base:bookworm
# vfs: works without overlay or fuse support; chroot isolation: no runc needed for RUN steps.
export STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot
say() { printf '[image] %s\n' "$*"; }

for program in buildah podman mmdebstrap; do
    command -v "$program" >/dev/null || { say "$program is missing: run 'sudo make install' (Debian packages buildah, podman, mmdebstrap)"; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { say "building needs root here (vfs storage, chroot isolation): run 'sudo make image'"; exit 1; }

started=$(date +%s)
base=${IMAGE_BASE:-$LOCAL_BASE}
if [ -z "${IMAGE_BASE:-}" ] && ! podman image exists "$LOCAL_BASE"; then
    say "base image $LOCAL_BASE from mmdebstrap (bookworm, minbase, python3, python3-venv, ca-certificates)"
    tarball=$(mktemp --suffix=.tar)
    trap 'rm -f "$tarball"' EXIT
    mmdebstrap --mode=root --variant=minbase --quiet \
        --include=python3,python3-venv,ca-certificates bookworm "$tarball"
    podman import --quiet "$tarball" "$LOCAL_BASE" >/dev/null
fi

extra_ca=""
if compgen -G "$IMAGE_CA_DIR/*.crt" >/dev/null; then
    extra_ca=$(cat "$IMAGE_CA_DIR"/*.crt)
fi

say "building $IMAGE from $base"
buildah bud --quiet --layers \
    --isolation chroot \
    --ulimit nofile=20000:20000 --ulimit nproc=4096:4096 \
    --build-arg BASE="$base" \
    --build-arg EXTRA_CA_CERTS="$extra_ca" \
    --tag "$IMAGE" --file Dockerfile . >/dev/null

seconds=$(( $(date +%s) - started ))
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
say "built $IMAGE in ${seconds}s; size $(( size / 1000000 )) MB"
