#!/usr/bin/env bash
# Start PostgreSQL, RabbitMQ and Redis on this machine when they are not running,
# installing them from Debian packages first when absent; install promtool, which the test
# suite runs on the alert rules, and Chromium, in which it renders pages. Idempotent.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # name port seconds
  local deadline=$((SECONDS + $3))
  until listening "$2"; do
    if [ "$SECONDS" -ge "$deadline" ]; then echo "error: $1 did not open port $2 within $3 s" >&2; exit 1; fi
    sleep 0.5
  done
  echo "$1 is up on port $2"
}

apt_updated=""
ensure_package() { # command package
  if ! command -v "$1" >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/"$1" >/dev/null 2>&1; then
    if [ -z "$apt_updated" ]; then $SUDO apt-get update -qq; apt_updated=1; fi
    echo "installing $2"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$2" >/dev/null
  fi
}

if ! listening 5432; then
  ensure_package pg_ctlcluster postgresql
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  # The benchmark counts statements per order with pg_stat_statements, which PostgreSQL loads
  # only at start (a server already running is left as it is).
  preload=/etc/postgresql/$version/main/conf.d/ecommerce-mesh.conf
  if [ ! -f "$preload" ]; then
    echo "shared_preload_libraries = 'pg_stat_statements'" | $SUDO tee "$preload" >/dev/null
  fi
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_for PostgreSQL 5432 60
  # Tests connect as postgres over TCP without a password, as on the CI machines. The first
  # matching line of pg_hba.conf wins, so the trust lines go on top of Debian's defaults.
  hba=/etc/postgresql/$version/main/pg_hba.conf
  if ! $SUDO grep -q "ecommerce-mesh trust" "$hba"; then
    $SUDO sed -i '1i host all all 127.0.0.1/32 trust # ecommerce-mesh trust\nhost all all ::1/128 trust # ecommerce-mesh trust' "$hba"
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  fi
else
  echo "PostgreSQL is up on port 5432"
fi

if ! listening 5672; then
  ensure_package rabbitmq-server rabbitmq-server
  $SUDO rabbitmq-server -detached || true
  wait_for RabbitMQ 5672 120
else
  echo "RabbitMQ is up on port 5672"
fi

if ! listening 6379; then
  ensure_package redis-server redis-server
  $SUDO mkdir -p /var/lib/redis /var/log/redis
  $SUDO redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for Redis 6379 30
else
  echo "Redis is up on port 6379"
fi

# promtool checks and unit-tests the alert rules (tests/deployments/test_observability.py).
# Debian ships it in its Prometheus package; only the tool is wanted, not the server (nor the
# node exporter it recommends), so a server systemd started on install is stopped again.
if ! command -v promtool >/dev/null 2>&1; then
  if [ -z "$apt_updated" ]; then $SUDO apt-get update -qq; apt_updated=1; fi
  echo "installing prometheus (for promtool)"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  if [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
fi
echo "promtool is $(promtool --version 2>&1 | head -n 1)"

# The API docs pages are rendered in Debian's headless Chromium by the test suite
# (tests/e2e/test_docs_in_browser.py).
if ! command -v chromium >/dev/null 2>&1; then
  if [ -z "$apt_updated" ]; then $SUDO apt-get update -qq; apt_updated=1; fi
  echo "installing chromium (for the browser tests)"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
echo "chromium is $(chromium --version 2>/dev/null | head -n 1)"
