#!/usr/bin/env bash
# Makes sure a fresh Debian 12 machine has what `npm start`, `npm test` and
# `npm run bench` need: the Debian packages first (gstreamer-superficial
# compiles against the -dev headers during `npm ci`), then node_modules from
# the lockfile whenever it is missing or older than package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."

# One list, also read by test/system-programs.test.ts and README.md.
packages=(
  gstreamer1.0-tools libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-x gstreamer1.0-libav
  socat mosquitto mosquitto-clients ffmpeg jq openssl gpiod
  python3 python3-cryptography make g++ strace
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "ensure-deps: installing Debian packages: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  else
    echo "ensure-deps: these Debian packages are missing. Install them, then run again:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

stamp=node_modules/.package-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "ensure-deps: installing node_modules from package-lock.json" >&2
  npm ci --no-audit --no-fund >&2
  echo "$want" > "$stamp"
fi
