#!/usr/bin/env bash
# Make sure the services the tests talk to are up: PostgreSQL on 127.0.0.1:5432 (trust auth) and
# Mosquitto on 127.0.0.1:1883, plus Node.js and the TimescaleDB (WebAssembly) test server of
# tools/timescaledb-wasm (its npm package, pinned by package-lock.json, installed with `npm ci`) and
# Chromium with chromedriver for the browser test of /ui.
# Uses the distribution's own tools; installs the Debian packages where they are missing.
# `services.sh install` only installs what is missing (the demo starts private servers itself);
# `services.sh bench` also installs wrk, the HTTP load generator of bench/api.py.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

trust_local_connections() {
  local hba
  hba=$(ls /etc/postgresql/*/main/pg_hba.conf | head -n 1)
  if ! grep -qE '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$hba"; then
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\nlocal all all trust' "$hba"
  fi
}

if [ "${1:-}" = install ]; then
  command -v pg_ctlcluster >/dev/null || [ -n "$(ls /usr/lib/postgresql 2>/dev/null)" ] || apt_install postgresql
  command -v mosquitto >/dev/null || apt_install mosquitto mosquitto-clients
  exit 0
fi

if ! listening 5432; then
  if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    echo "services: installing PostgreSQL"
    apt_install postgresql
    trust_local_connections
  fi
  echo "services: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start
  for _ in $(seq 1 50); do listening 5432 && break; sleep 0.2; done
fi

if ! listening 1883; then
  if ! command -v mosquitto >/dev/null; then
    echo "services: installing Mosquitto"
    apt_install mosquitto mosquitto-clients
  fi
  echo "services: starting Mosquitto"
  mosquitto -d -c /etc/mosquitto/mosquitto.conf
  for _ in $(seq 1 50); do listening 1883 && break; sleep 0.2; done
fi
command -v mosquitto_sub >/dev/null || apt_install mosquitto-clients

if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  echo "services: installing Node.js"
  apt_install nodejs npm
fi

# The TimescaleDB test server's npm package, exactly as package-lock.json pins it; again only when
# the lock file changed since the last install.
tsdb="$repo/tools/timescaledb-wasm"
if ! cmp -s "$tsdb/package-lock.json" "$tsdb/node_modules/.energyhub-installed.json"; then
  echo "services: installing the TimescaleDB test server (npm ci in tools/timescaledb-wasm)"
  (cd "$tsdb" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  cp "$tsdb/package-lock.json" "$tsdb/node_modules/.energyhub-installed.json"
fi

# Headless Chromium and its WebDriver for the /ui browser test (tests/api/test_ui_browser.py).
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  echo "services: installing Chromium and chromedriver"
  apt_install chromium chromium-driver
fi

if [ "${1:-}" = bench ] && ! command -v wrk >/dev/null; then
  echo "services: installing wrk"
  apt_install wrk
fi

listening 5432 || { echo "services: PostgreSQL is not listening on 127.0.0.1:5432" >&2; exit 1; }
listening 1883 || { echo "services: Mosquitto is not listening on 127.0.0.1:1883" >&2; exit 1; }
echo "services: PostgreSQL :5432 and Mosquitto :1883 up"
