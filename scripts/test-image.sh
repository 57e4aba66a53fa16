#!/usr/bin/env bash
# The container runtime and a small image for the container tests (.ci/run calls it). No registry
# is reachable here, so the image is built from Debian's packages: mmdebstrap makes a root file
# system with python3, and podman imports it under a name of Tessera's own (never a Docker Hub
# name, so no test can pull by accident). Usage: test-image.sh — prints TESSERA_TEST_IMAGE=… to eval.
# Installs podman and runc (crun, podman's usual runtime, fails on hybrid cgroups) and slirp4netns
# (tasks' public network) when missing. Runs as root.
set -euo pipefail
IMAGE=${TESSERA_TEST_IMAGE:-localhost/tessera-test/python:bookworm}
bash "$(dirname "$0")/ensure-packages.sh" podman runc mmdebstrap slirp4netns
if ! podman image exists "$IMAGE"; then
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  echo "building $IMAGE from Debian's packages (mmdebstrap, about 15 s)" >&2
  mmdebstrap --quiet --variant=essential --include=python3 --format=tar bookworm "$scratch/rootfs.tar" >&2
  podman import --quiet "$scratch/rootfs.tar" "$IMAGE" >/dev/null
fi
echo "TESSERA_TEST_IMAGE=$IMAGE"
