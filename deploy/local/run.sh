#!/usr/bin/env bash
# Starts the platform's services on this machine with SQLite databases under ./data/ and
# keeps them in the foreground; Ctrl-C (or SIGTERM) stops all of them gracefully.
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=${BIN:-target/debug}
export PMP_REGISTRY__ADMIN__USERNAME=${PMP_REGISTRY__ADMIN__USERNAME:-admin}
# Development only: the bootstrap admin's password. Set your own in any shared deployment.
export PMP_REGISTRY__ADMIN__PASSWORD=${PMP_REGISTRY__ADMIN__PASSWORD:-admin-dev-password}
mkdir -p data

pids=()
stop() {
  trap - INT TERM
  echo "stopping services..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "all services stopped"
}
trap stop INT TERM EXIT

start() {
  local name=$1
  "$BIN/$name" &
  pids+=($!)
}

start partner-registry
for service in certificate-store ftm-management; do
  if [ -x "$BIN/$service" ]; then start "$service"; fi
done

echo "services started; press Ctrl-C to stop"
wait -n "${pids[@]}" || true
