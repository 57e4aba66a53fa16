#!/usr/bin/env bash
# (From ../shared/recipes/s3-swift.sh, where it was tested; .ci/run calls it.)
# A real S3-compatible server on one machine, for tests: OpenStack Swift (Debian packages) with
# its s3api middleware and tempauth. It checks request signatures, supports multipart uploads and
# presigned URLs. Usage: s3-swift.sh [port] — prints the endpoint and credentials as env lines.
# Credentials: access key "test:tester", secret "testing", region "us-east-1", path-style addressing.
# Runs as root (sets user = root). Data lives under $S3_DIR (default /tmp/tessera-s3).
set -euo pipefail
PORT=${1:-9000}
DIR=${S3_DIR:-/tmp/tessera-s3}
if ! command -v swift-proxy-server >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq swift swift-proxy swift-object swift-container swift-account memcached) >/dev/null
fi
# tempauth keeps S3 credentials' tokens in memcache: without it every request is an InternalError
command -v memcached >/dev/null || (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq memcached >/dev/null)
if ! (exec 3<>/dev/tcp/127.0.0.1/11211) 2>/dev/null; then memcached -d -u root -l 127.0.0.1 -p 11211; fi
mkdir -p "$DIR/etc" "$DIR/srv/d1" "$DIR/run" /etc/swift
[ -f /etc/swift/swift.conf ] && grep -q swift_hash_path_suffix /etc/swift/swift.conf || cat > /etc/swift/swift.conf <<CONF
[swift-hash]
swift_hash_path_suffix = tessera-test
swift_hash_path_prefix = tessera-test
[storage-policy:0]
name = Policy-0
default = yes
CONF
common="[DEFAULT]
devices = $DIR/srv
mount_check = false
swift_dir = $DIR/etc
user = root
bind_ip = 127.0.0.1
log_level = WARNING"
for kind in account:6212 container:6211 object:6210; do
  name=${kind%%:*} port=${kind##*:}
  printf '%s\nbind_port = %s\n\n[pipeline:main]\npipeline = %s-server\n\n[app:%s-server]\nuse = egg:swift#%s\n' \
    "$common" "$port" "$name" "$name" "$name" > "$DIR/etc/$name-server.conf"
  if [ ! -f "$DIR/etc/$name.ring.gz" ]; then
    (cd "$DIR/etc" && swift-ring-builder "$name.builder" create 8 1 1 >/dev/null &&
      swift-ring-builder "$name.builder" add r1z1-127.0.0.1:"$port"/d1 100 >/dev/null &&
      swift-ring-builder "$name.builder" rebalance >/dev/null || true)
  fi
done
cat > "$DIR/etc/proxy-server.conf" <<CONF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $PORT
swift_dir = $DIR/etc
user = root
log_level = WARNING

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin

[filter:s3api]
use = egg:swift#s3api
location = us-east-1

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:11211

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
CONF
for name in account container object proxy; do
  pidf=$DIR/run/$name.pid
  if [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then continue; fi
  nohup "swift-$name-server" "$DIR/etc/$name-server.conf" >"$DIR/run/$name.log" 2>&1 &
  echo $! > "$pidf"
done
for i in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthcheck" >/dev/null && break; sleep 0.2; done
curl -sf "http://127.0.0.1:$PORT/healthcheck" >/dev/null || { echo "swift proxy did not start; logs in $DIR/run" >&2; exit 1; }
echo "S3_ENDPOINT=http://127.0.0.1:$PORT"
echo "S3_ACCESS_KEY_ID=test:tester"
echo "S3_SECRET_ACCESS_KEY=testing"
echo "S3_REGION=us-east-1"
