#!/usr/bin/env bash
# Sourced by run.sh when HSM=softhsm: every private key of the platform in a SoftHSM2
# token under ./data/softhsm/ instead of PEM files. On first use it runs a development key
# ceremony: initialises the token (random PINs, the user PIN in a 0600 file), generates the
# three service identity keys, the registry's token key and the platform signing key
# (RSA-3072) inside the token with `<service> generate-hsm-key`, and has a throw-away
# platform root issue the signing certificate (the root's key is deleted at once). Then it
# exports the settings that make each service use them.
set -euo pipefail

module=""
for candidate in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so \
  /usr/local/lib/softhsm/libsofthsm2.so; do
  [ -e "$candidate" ] && module=$candidate && break
done
if [ -z "$module" ] || ! command -v softhsm2-util >/dev/null; then
  echo "HSM=softhsm needs SoftHSM2: apt-get install softhsm2" >&2
  exit 1
fi

hsm_directory=$PWD/data/softhsm
token=pmp-dev
mkdir -p "$hsm_directory/tokens" "$hsm_directory/service-keys"
export SOFTHSM2_CONF=$hsm_directory/softhsm2.conf
[ -e "$SOFTHSM2_CONF" ] || printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
  "$hsm_directory/tokens" > "$SOFTHSM2_CONF"

if ! softhsm2-util --show-slots 2>/dev/null | grep -q "Label:.*$token"; then
  (umask 077 && openssl rand -hex 16 > "$hsm_directory/pin")
  softhsm2-util --init-token --free --label "$token" --so-pin "$(openssl rand -hex 16)" \
    --pin "$(cat "$hsm_directory/pin")" > /dev/null
  echo "initialised SoftHSM2 token $token in $hsm_directory"
fi

for prefix in PMP_REGISTRY PMP_CERTSTORE PMP_FTM; do
  export "${prefix}__HSM__MODULE=$module" "${prefix}__HSM__TOKEN_LABEL=$token" \
    "${prefix}__HSM__PIN_FILE=$hsm_directory/pin"
done

# generate_once <binary> <label> <algorithm> <public key file>
generate_once() {
  [ -s "$4" ] && return
  "$BIN/$1" generate-hsm-key --label "$2" --algorithm "$3" --public-key-out "$4" > /dev/null
  echo "generated $2 ($3) in the token"
}
generate_once partner-registry partner-registry-identity ec-p256 "$hsm_directory/service-keys/partner-registry.pem"
generate_once certificate-store certificate-store-identity ec-p256 "$hsm_directory/service-keys/certificate-store.pem"
generate_once ftm-management ftm-management-identity ec-p256 "$hsm_directory/service-keys/ftm-management.pem"
generate_once partner-registry registry-tokens ec-p256 "$hsm_directory/registry-tokens.pub.pem"
generate_once certificate-store platform-signing rsa-3072 "$hsm_directory/platform-signing.pub.pem"

if [ ! -s "$hsm_directory/platform-signing.pem" ]; then
  ceremony=$(mktemp -d)
  openssl req -x509 -newkey rsa:3072 -nodes -keyout "$ceremony/root.key" -days 3650 \
    -subj "/O=Partner Management Platform/CN=Partner Management Platform Root CA (development)" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$hsm_directory/platform-root.pem" 2> /dev/null
  printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' \
    > "$ceremony/signing.ext"
  openssl x509 -new -force_pubkey "$hsm_directory/platform-signing.pub.pem" \
    -subj "/O=Partner Management Platform/CN=Partner Management Platform Signing CA (SoftHSM2)" \
    -CA "$hsm_directory/platform-root.pem" -CAkey "$ceremony/root.key" -days 1825 \
    -extfile "$ceremony/signing.ext" -out "$hsm_directory/platform-signing.pem"
  rm -rf "$ceremony"
  echo "issued the platform signing certificate for the token's key (root key discarded)"
fi

for prefix in PMP_REGISTRY PMP_CERTSTORE PMP_FTM; do
  case $prefix in
    PMP_REGISTRY) service=partner-registry ;;
    PMP_CERTSTORE) service=certificate-store ;;
    PMP_FTM) service=ftm-management ;;
  esac
  export "${prefix}__SERVICE_IDENTITY__PRIVATE_KEY_LABEL=$service-identity" \
    "${prefix}__SERVICE_IDENTITY__GENERATE_KEY=false" \
    "${prefix}__SERVICE_IDENTITY__PUBLIC_KEYS_DIR=$hsm_directory/service-keys"
done
export PMP_REGISTRY__TOKENS__SIGNING_KEY_LABEL=registry-tokens
export PMP_CERTSTORE__PLATFORM__SIGNING_KEY_LABEL=platform-signing
export PMP_CERTSTORE__PLATFORM__GENERATE=false
export PMP_CERTSTORE__PLATFORM__ROOT_CERTIFICATE_FILE=$hsm_directory/platform-root.pem
export PMP_CERTSTORE__PLATFORM__SIGNING_CERTIFICATE_FILE=$hsm_directory/platform-signing.pem
echo "every private key is in SoftHSM2 token $token"
