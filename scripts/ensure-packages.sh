#!/usr/bin/env bash
# Installs the Debian packages whose commands are missing (the test set-up scripts call it).
# Arguments: COMMAND or COMMAND:PACKAGE (when the package is named otherwise). Output on stderr.
# Tries without `apt-get update` first (fast when the lists are fresh), then with it. Runs as root.
set -euo pipefail
missing=()
for wanted in "$@"; do
  command -v "${wanted%%:*}" >/dev/null || missing+=("${wanted#*:}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing ${missing[*]}" >&2
(DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1) \
  || (apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null)
