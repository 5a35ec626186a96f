#!/usr/bin/env bash
# The seed workflow, once, against running services (`make demo`; `make run` calls it after
# starting them): a new Foundational Trust Provider registers, the admin loads the FTM CAs,
# the provider uploads its partner certificate, creates an FTM and uploads its chip
# certificate, the admin approves it, and the chip certificate verifies as trusted.
# Every run uses a new partner and a new development PKI; existing data is kept.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ -z "${PMPCTL:-}" ]; then
  target_directory=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
  PMPCTL="${target_directory:-${CARGO_TARGET_DIR:-target}}/debug/pmpctl"
fi
ADMIN_USERNAME=${PMP_REGISTRY__ADMIN__USERNAME:-admin}
ADMIN_PASSWORD=${PMP_REGISTRY__ADMIN__PASSWORD:-admin-dev-password}
run_id=$(date +%Y%m%d%H%M%S)
partner_id="demo-ftm-$run_id"
organization="Demo Secure Chips $run_id"
partner_password="demo-password-$run_id"
work="${DEMO_DIR:-data/demo}/$run_id"
mkdir -p "$work/config"
# The demo's own pmpctl configuration directory: it does not touch your saved token.
export XDG_CONFIG_HOME="$(cd "$work/config" && pwd)"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
pmpctl() { "$PMPCTL" "$@"; }

step "0. Services"
pmpctl health --wait 60

step "1. Development PKI for \"$organization\" (root, intermediate, partner and chip certificates)"
pmpctl dev certs --org "$organization" --out "$work/certs"

step "2. Partner self-registers as an FTM provider: $partner_id"
printf '%s\n' "$partner_password" | pmpctl register --partner-id "$partner_id" --password-stdin \
  --first-name Ada --last-name Lovelace --organization "$organization" --partner-type FTM_Provider \
  --address "1 Demo Street, Springfield" --email "$partner_id@demo.example" --phone "+1 555 0100"

step "3. Admin logs in and uploads the CA certificates for domain FTM"
admin_token=$(printf '%s\n' "$ADMIN_PASSWORD" | pmpctl login "$ADMIN_USERNAME" --password-stdin --print-token -q)
PMPCTL_TOKEN=$admin_token pmpctl ca upload "$work/certs/ca-bundle.pem" --domain FTM

step "4. Partner logs in and uploads its partner certificate: the partner becomes ACTIVE"
printf '%s\n' "$partner_password" | pmpctl login "$partner_id" --password-stdin
pmpctl partner cert upload "$work/certs/partner.pem" --domain FTM
pmpctl partner show

step "5. Partner creates the FTM details"
ftm_id=$(pmpctl ftm create --make "Demo Chips" --model "SecureElement $run_id" -q)
pmpctl ftm show "$ftm_id"

step "6. Partner uploads the FTM chip certificate (PENDING_APPROVAL)"
pmpctl ftm cert upload "$ftm_id" "$work/certs/ftm-chip.pem"
pmpctl verify "$work/certs/ftm-chip.pem"

step "7. Admin approves the FTM"
PMPCTL_TOKEN=$admin_token pmpctl ftm approve "$ftm_id"

step "8. The FTM is active and its chip certificate is trusted"
pmpctl ftm show "$ftm_id"
pmpctl verify "$work/certs/ftm-chip.pem"
pmpctl logout >/dev/null

printf '\n\033[1mDemo complete.\033[0m Partner %s, FTM %s; files under %s\n' "$partner_id" "$ftm_id" "$work"
