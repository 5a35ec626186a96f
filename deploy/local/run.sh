#!/usr/bin/env bash
# Starts the three services on this machine with SQLite databases under ./data/ and the
# portal in front of them, runs the seed workflow once (deploy/local/demo.sh), then keeps
# them in the foreground;
# Ctrl-C (or SIGTERM) stops all of them gracefully. DEMO=0 skips the demo. HSM=softhsm keeps
# every private key in a SoftHSM2 token instead of files (deploy/local/softhsm.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."

# Where cargo put the binaries: honours CARGO_TARGET_DIR and build.target-dir.
if [ -z "${BIN:-}" ]; then
  target_directory=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
  BIN="${target_directory:-${CARGO_TARGET_DIR:-target}}/debug"
fi
export PMP_REGISTRY__ADMIN__USERNAME=${PMP_REGISTRY__ADMIN__USERNAME:-admin}
# Development only: the bootstrap admin's password. Set your own in any shared deployment.
export PMP_REGISTRY__ADMIN__PASSWORD=${PMP_REGISTRY__ADMIN__PASSWORD:-admin-dev-password}
mkdir -p data
if [ "${HSM:-}" = softhsm ]; then
  # shellcheck source=deploy/local/softhsm.sh
  source ./deploy/local/softhsm.sh
elif [ -n "${HSM:-}" ]; then
  echo "HSM=$HSM: only HSM=softhsm is known" >&2
  exit 2
fi

pids=()
stopping=0
stop() {
  [ "$stopping" = 1 ] && return
  stopping=1
  trap - INT TERM
  echo
  echo "stopping services..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "all services stopped"
}
trap stop INT TERM EXIT

for service in partner-registry certificate-store ftm-management; do
  "$BIN/$service" > "data/$service.log" 2>&1 &
  pids+=($!)
  echo "started $service (pid $!, log data/$service.log)"
done

"$BIN/portal" > data/portal.log 2>&1 &
pids+=($!)
echo "started portal (pid $!, log data/portal.log)"

if [ "${DEMO:-1}" != 0 ]; then
  PMPCTL="$BIN/pmpctl" ./deploy/local/demo.sh
fi

echo
echo "services are running: registry 127.0.0.1:50051, certificate store 127.0.0.1:50052, FTM management 127.0.0.1:50053"
echo "metrics: http://127.0.0.1:9101/metrics, :9102, :9103"
echo "portal: http://127.0.0.1:8080 (sign in as $PMP_REGISTRY__ADMIN__USERNAME, or register a partner) — press Ctrl-C to stop"
# Returns when a service exits on its own, or when Ctrl-C runs `stop`.
wait -n "${pids[@]}" || true
