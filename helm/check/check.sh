#!/usr/bin/env bash
# The chart's checks (make chart, part of make test): lint, render with the default and the
# production values, validate every object strictly against Kubernetes 1.27 and 1.33, lint
# the values files, and assert the properties a platform team relies on (properties.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash helm/check/tools.sh
tools=${PMP_CHART_TOOLS:-target/chart-tools}
helm="$tools/helm"
python="$tools/venv/bin/python"
chart=helm/pmp-ftm
rendered=$(mktemp -d)
trap 'rm -rf "$rendered"' EXIT

"$tools/venv/bin/yamllint" --strict -c helm/check/yamllint.yaml \
  "$chart/values.yaml" "$chart/values-production.yaml" "$chart/Chart.yaml"
"$helm" lint --strict "$chart"
"$helm" lint --strict "$chart" -f "$chart/values-production.yaml"
"$helm" template pmp "$chart" > "$rendered/default.yaml"
"$helm" template pmp "$chart" -f "$chart/values-production.yaml" > "$rendered/production.yaml"
for version in 1.27.0 1.33.0; do
  "$tools/venv/bin/kubernetes-validate" --strict --quiet -k "$version" \
    "$rendered/default.yaml" "$rendered/production.yaml"
done
"$python" helm/check/properties.py "$helm" "$chart" "$rendered/default.yaml" "$rendered/production.yaml"
echo "chart: all checks passed"
