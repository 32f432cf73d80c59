#!/usr/bin/env bash
# Static checks of deploy/ and the Dockerfile: yamllint, the kustomization built and validated
# (kubernetes-validate), cfn-lint, checkov, the alert rules' copies equal to the PrometheusRule
# and valid (promtool), the plain Prometheus configuration (promtool), hadolint.
# (The live checks — promtool check metrics, a real Prometheus scraping the daemon, every metric
# named in the rules and the dashboard present in a scrape — are in tests/deploy.rs.)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/tools.sh
bin=.venv-tools/bin
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "==> yamllint"
$bin/yamllint -s -c .yamllint.yaml deploy/
echo "==> kustomize build (kubectl kustomize) + kubernetes-validate"
kubectl kustomize deploy/kubernetes >"$tmp/kubernetes.yaml"
$bin/kubernetes-validate --strict --quiet "$tmp/kubernetes.yaml"
echo "==> cfn-lint, with the project's rules (scripts/cfn-rules)"
$bin/cfn-lint --append-rules scripts/cfn-rules --template deploy/cloudformation/*.yaml
echo "==> each project rule fails its fixture and passes its counter-example (tests/cfn-fixtures)"
for fixture in tests/cfn-fixtures/*.yaml; do
  name=$(basename "$fixture" .yaml)
  rule=$(echo "$name" | cut -d- -f2)
  out=$($bin/cfn-lint --append-rules scripts/cfn-rules --template "$fixture" 2>&1 || true)
  # A rule that crashed reports E0002, which would let a counter-example "pass".
  if echo "$out" | grep -q "^E0002"; then echo "$out" >&2; exit 1; fi
  found=$(echo "$out" | grep -c "^$rule " || true)
  case "$name" in
    fail-*) [ "$found" -gt 0 ] || { echo "$rule did not fail $fixture" >&2; exit 1; } ;;
    pass-*) [ "$found" -eq 0 ] || { echo "$rule failed its counter-example $fixture" >&2; exit 1; } ;;
    *) echo "$fixture: name it fail-<rule>-... or pass-<rule>-..." >&2; exit 1 ;;
  esac
  echo "    $name: $rule ${found} finding(s)"
done
echo "==> checkov"
$bin/checkov -d deploy/cloudformation --framework cloudformation --quiet --compact --skip-download
echo "==> alert rules: the copies equal deploy/kubernetes/prometheusrule.yaml (scripts/rules.py)"
$bin/python scripts/rules.py --check
echo "==> promtool check rules"
promtool check rules deploy/prometheus/s3-reconciler.rules.yml
echo "==> promtool check config deploy/prometheus/prometheus.yml"
# Debian's promtool is built without Kubernetes service discovery: the check swaps the
# discovery block for a static target, so the rest (relabeling, rule files) is still checked.
cp deploy/prometheus/s3-reconciler.rules.yml "$tmp/"
$bin/python - deploy/prometheus/prometheus.yml "$tmp/prometheus.yml" <<'PY'
import sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
for job in cfg["scrape_configs"]:
    assert job.pop("kubernetes_sd_configs", None), f"{job['job_name']}: no kubernetes_sd_configs"
    job["static_configs"] = [{"targets": ["127.0.0.1:9090"]}]
yaml.safe_dump(cfg, open(sys.argv[2], "w"))
PY
promtool check config "$tmp/prometheus.yml"
echo "==> hadolint Dockerfile"
$bin/hadolint Dockerfile
echo "==> grafana dashboard is valid JSON"
python3 -m json.tool deploy/grafana/s3-reconciler.json >/dev/null
