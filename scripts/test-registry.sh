#!/usr/bin/env bash
# A private image registry on this machine, for the test of private images (.ci/run calls it after
# test-image.sh): Debian's docker-registry (the CNCF distribution registry) with htpasswd auth on
# 127.0.0.1:5000, plain HTTP (podman is told so for that address only), holding the test image under
# a name of its own. Prints TESSERA_TEST_REGISTRY_IMAGE, …_USER and …_PASSWORD lines to eval.
# Runs as root. Data lives under $REGISTRY_DIR (default /tmp/tessera-registry).
set -euo pipefail
DIR=${REGISTRY_DIR:-/tmp/tessera-registry}
ADDRESS=127.0.0.1:5000
SOURCE=${TESSERA_TEST_IMAGE:?run scripts/test-image.sh first}
IMAGE=$ADDRESS/tessera-test/private:1
USER_NAME=tessera-robot
PASSWORD=registry-password-$(hostname | md5sum | cut -c1-12)
bash "$(dirname "$0")/ensure-packages.sh" docker-registry htpasswd:apache2-utils
mkdir -p "$DIR/data" /etc/containers/registries.conf.d
htpasswd -Bbn "$USER_NAME" "$PASSWORD" > "$DIR/htpasswd"
cat > "$DIR/config.yml" <<CONF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $DIR/data
http:
  addr: $ADDRESS
auth:
  htpasswd:
    realm: tessera-test
    path: $DIR/htpasswd
CONF
cat > /etc/containers/registries.conf.d/tessera-test-registry.conf <<CONF
[[registry]]
location = "$ADDRESS"
insecure = true
CONF
if ! (exec 3<>/dev/tcp/127.0.0.1/5000) 2>/dev/null; then
  nohup docker-registry serve "$DIR/config.yml" > "$DIR/registry.log" 2>&1 &
  for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/5000) 2>/dev/null && break; sleep 0.2; done
fi
podman push --quiet --creds "$USER_NAME:$PASSWORD" "$SOURCE" "$IMAGE" >&2
# Only the registry holds it: a task naming it must be pulled, with the credentials.
podman rmi --force "$IMAGE" >/dev/null 2>&1 || true
echo "TESSERA_TEST_REGISTRY_IMAGE=$IMAGE"
echo "TESSERA_TEST_REGISTRY_USER=$USER_NAME"
echo "TESSERA_TEST_REGISTRY_PASSWORD=$PASSWORD"
