#!/usr/bin/env bash
# Static checks of deploy/ and the Dockerfile: yamllint, kubernetes-validate, cfn-lint, checkov,
# promtool rules, hadolint.
# (The live checks — promtool check metrics, a real Prometheus scraping the daemon, every metric
# named in the rules and the dashboard present in a scrape — are in tests/deploy.rs.)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/tools.sh
bin=.venv-tools/bin
echo "==> yamllint"
$bin/yamllint -s -c .yamllint.yaml deploy/
echo "==> kubernetes-validate"
$bin/kubernetes-validate --strict --quiet deploy/kubernetes/*.yaml
echo "==> cfn-lint"
$bin/cfn-lint deploy/cloudformation/*.yaml
echo "==> checkov"
$bin/checkov -d deploy/cloudformation --framework cloudformation --quiet --compact --skip-download
echo "==> promtool check rules"
rules=$(mktemp --suffix .yaml)
trap 'rm -f "$rules"' EXIT
$bin/python - deploy/kubernetes/prometheusrule.yaml "$rules" <<'PY'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
yaml.safe_dump(doc["spec"], open(sys.argv[2], "w"))
PY
promtool check rules "$rules"
echo "==> hadolint Dockerfile"
$bin/hadolint Dockerfile
echo "==> grafana dashboard is valid JSON"
python3 -m json.tool deploy/grafana/s3-reconciler.json >/dev/null
