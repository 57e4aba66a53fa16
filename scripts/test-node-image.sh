#!/usr/bin/env bash
# Tessera's own image, built from the repository's Containerfile for the image test (.ci/run calls
# it). No registry is reachable here, so the Containerfile's base is made locally: Debian bookworm
# from Debian's packages (mmdebstrap) with python3, plus this machine's Node 20 binary and npm
# copied in (Debian bookworm's nodejs is 18, older than Tessera's engines allow).
# The image is labelled with a hash of its build inputs and rebuilt only when they change.
# Usage: test-node-image.sh — prints TESSERA_TEST_TESSERA_IMAGE=… to eval (all else on stderr).
# Installs podman, runc, mmdebstrap and slirp4netns when missing. Runs as root.
set -euo pipefail
cd "$(dirname "$0")/.."
NODE_VERSION=$(node --version)
case "$NODE_VERSION" in v20.*) ;; *) echo "the host's node is $NODE_VERSION; the image's base needs Node 20" >&2; exit 1 ;; esac
BASE=${TESSERA_TEST_NODE_BASE:-localhost/tessera-test/node:${NODE_VERSION#v}-bookworm}
IMAGE=${TESSERA_TEST_TESSERA_IMAGE:-localhost/tessera-test/tessera:dev}

bash scripts/ensure-packages.sh podman runc mmdebstrap slirp4netns

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

if ! podman image exists "$BASE"; then
  node_bin=$(readlink -f "$(command -v node)")
  npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  echo "building $BASE from Debian's packages and $node_bin (mmdebstrap, about 20 s)" >&2
  # libstdc++6: the node binary links it; ca-certificates: npm ci reaches the registry over TLS.
  mmdebstrap --quiet --variant=essential --include=python3,libstdc++6,ca-certificates --format=tar \
    --customize-hook="copy-in $node_bin /usr/local/bin" \
    --customize-hook="mkdir -p \"\$1/usr/local/lib/node_modules\"" \
    --customize-hook="copy-in $npm_dir /usr/local/lib/node_modules" \
    --customize-hook="ln -s ../lib/node_modules/npm/bin/npm-cli.js \"\$1/usr/local/bin/npm\"" \
    bookworm "$scratch/rootfs.tar" >&2
  podman import --quiet --change 'CMD ["/bin/bash"]' "$scratch/rootfs.tar" "$BASE" >/dev/null
fi

# Everything the Containerfile copies, and the base it starts from: a change to any rebuilds.
inputs_hash=$( {
  podman image inspect --format '{{.Id}}' "$BASE"
  find Containerfile .containerignore package.json package-lock.json tsconfig.json bin src migrations examples ui spec docs/async-jobs.md -type f -print0 | sort -z | xargs -0 sha256sum
} | sha256sum | cut -c1-32)
if [ "$(podman image inspect --format '{{index .Labels "org.tessera.inputs"}}' "$IMAGE" 2>/dev/null || true)" != "$inputs_hash" ]; then
  echo "building $IMAGE on $BASE (npm ci inside; about 2 minutes)" >&2
  started=$(date +%s)
  # runc and cgroupfs: crun fails on this machine's hybrid cgroups; host networking: the build's
  # npm ci reaches the registry without a bridge network; ulimits below the machine's hard limits;
  # the host's CA bundle as a build secret, for a proxy that re-signs the registry's TLS.
  podman --runtime runc --cgroup-manager cgroupfs build --quiet --network host \
    --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 \
    --secret "id=npm_ca,src=${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}" \
    --build-arg "BASE=$BASE" --label "org.tessera.inputs=$inputs_hash" -t "$IMAGE" -f Containerfile . >&2
  echo "built $IMAGE in $(( $(date +%s) - started )) s, $(podman image inspect --format '{{.Size}}' "$IMAGE") bytes" >&2
fi
echo "TESSERA_TEST_TESSERA_IMAGE=$IMAGE"
