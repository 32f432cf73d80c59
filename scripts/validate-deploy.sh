#!/usr/bin/env bash
# Static checks of deploy/ and the Dockerfile: yamllint; the Kubernetes base and its two
# monitoring variants built and validated (kubernetes-validate), and what tells them apart;
# cfn-lint (with the project's rules, each proven on its fixtures), checkov, the ECS template's
# CPU architecture; the alert rules' copies equal to the PrometheusRule, each alert with its
# runbook_url, valid and unit-tested (promtool); the plain Prometheus configuration (promtool);
# the dashboard's queries parse; the example configurations equal to scripts/examples.py's one
# source; hadolint.
# (The live checks — promtool check metrics, a real Prometheus scraping the daemon, every metric
# named in the rules and the dashboard present in a scrape — are in tests/deploy.rs; each example
# configuration through the binary's check-config: scripts/examples.py --check-config BINARY,
# run by scripts/test.sh once the binary is built.)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/tools.sh
bin=.venv-tools/bin
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "==> yamllint"
$bin/yamllint -s -c .yamllint.yaml deploy/ tests/prometheus/
echo "==> kustomize build (kubectl kustomize) + kubernetes-validate: the base and both variants"
# kubernetes-validate has no schema for the Operator's CRDs (ServiceMonitor, PrometheusRule): it
# warns about them and validates the rest.
kubectl kustomize deploy/kubernetes >"$tmp/base.yaml"
kubectl kustomize deploy/kubernetes-overlays/prometheus-operator >"$tmp/prometheus-operator.yaml"
kubectl kustomize deploy/kubernetes-overlays/plain-prometheus >"$tmp/plain-prometheus.yaml"
for variant in base prometheus-operator plain-prometheus; do
  echo "    $variant"
  $bin/kubernetes-validate --strict --quiet "$tmp/$variant.yaml"
done
echo "==> the variants: the base needs no CRD, each component adds only its part"
$bin/python - "$tmp" deploy/prometheus/prometheus.yml <<'PY'
import sys, yaml
tmp, prometheus_yml = sys.argv[1], sys.argv[2]
def load(variant):
    return [d for d in yaml.safe_load_all(open(f"{tmp}/{variant}.yaml")) if d]
def key(d):
    return (d["apiVersion"], d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"])
def one(docs, kind):
    (d,) = [d for d in docs if d["kind"] == kind]
    return d
base, operator, plain = load("base"), load("prometheus-operator"), load("plain-prometheus")
# The base applies on a cluster without the Prometheus Operator.
crds = [key(d) for d in base if d["apiVersion"].startswith("monitoring.coreos.com/")]
assert not crds, f"the base has the Operator's resources: {crds}"
# The Operator variant: the base plus a ServiceMonitor and a PrometheusRule, nothing else changed.
added = sorted(d["kind"] for d in operator if key(d) not in {key(b) for b in base})
assert added == ["PrometheusRule", "ServiceMonitor"], f"prometheus-operator adds {added}"
by_key = {key(d): d for d in operator}
changed = [key(b) for b in base if by_key.get(key(b)) != b]
assert not changed, f"prometheus-operator changes the base's {changed}"
service = one(base, "Service")
deployment = one(base, "Deployment")
monitor = one(operator, "ServiceMonitor")
(container,) = deployment["spec"]["template"]["spec"]["containers"]
(http,) = [p for p in container["ports"] if p["name"] == "http"]
assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["http"]
assert "http" in [p["name"] for p in service["spec"]["ports"]]
# Plain Prometheus: the base with the pod annotations prometheus.yml's job reads, nothing else.
plain_deployment = one(plain, "Deployment")
annotations = plain_deployment["spec"]["template"]["metadata"].pop("annotations")
assert plain_deployment == deployment, "plain-prometheus changes more than the pod annotations"
assert [key(d) for d in plain] == [key(d) for d in base]
want = {"prometheus.io/scrape": "true", "prometheus.io/port": str(http["containerPort"]),
        "prometheus.io/path": monitor["spec"]["endpoints"][0]["path"]}
assert annotations == want, f"pod annotations {annotations}, want {want}"
(job,) = yaml.safe_load(open(prometheus_yml))["scrape_configs"]
read = {l for r in job["relabel_configs"] for l in r.get("source_labels", [])}
for a in want:
    meta = "__meta_kubernetes_pod_annotation_" + a.replace(".", "_").replace("/", "_")
    assert meta in read, f"{prometheus_yml} does not read the pod annotation {a} ({meta})"
# A failing preflight check makes pods unready: they must not block node drains.
pdb = one(base, "PodDisruptionBudget")
assert pdb["spec"].get("unhealthyPodEvictionPolicy") == "AlwaysAllow", pdb["spec"]
print("    base: no monitoring.coreos.com; prometheus-operator: + ServiceMonitor, PrometheusRule;"
      " plain-prometheus: + prometheus.io/* pod annotations; PDB: unhealthyPodEvictionPolicy AlwaysAllow")
PY
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
echo "==> ECS: the task's CPU architecture is a parameter (X86_64, ARM64)"
$bin/python - deploy/cloudformation/ecs-service.yaml <<'PY'
import sys
from cfnlint.decode import cfn_yaml
t = cfn_yaml.load(sys.argv[1])
p = t["Parameters"]["CpuArchitecture"]
assert sorted(p["AllowedValues"]) == ["ARM64", "X86_64"] and p["Default"] == "X86_64", p
rp = t["Resources"]["TaskDefinition"]["Properties"]["RuntimePlatform"]
assert rp == {"OperatingSystemFamily": "LINUX", "CpuArchitecture": {"Ref": "CpuArchitecture"}}, rp
PY
echo "==> alert rules: the copies equal the PrometheusRule, runbook_url on each (scripts/rules.py)"
$bin/python scripts/rules.py --check
echo "==> promtool check rules (plain Prometheus, and the ECS copy in ecs-service.yaml)"
promtool check rules deploy/prometheus/s3-reconciler.rules.yml
$bin/python - deploy/cloudformation/ecs-service.yaml "$tmp/ecs.rules.yml" <<'PY'
import sys
from cfnlint.decode import cfn_yaml
data = cfn_yaml.load(sys.argv[1])["Resources"]["AlertRules"]["Properties"]["Data"]
open(sys.argv[2], "w").write(data)
PY
promtool check rules "$tmp/ecs.rules.yml"
echo "==> promtool test rules (tests/prometheus: the gates, the preflight pairing, ECS's down clause)"
cp deploy/prometheus/s3-reconciler.rules.yml tests/prometheus/*.test.yml "$tmp/"
(cd "$tmp" && promtool test rules rules.test.yml ecs-rules.test.yml)
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
echo "==> grafana dashboard: valid JSON, every query parses (promtool, on an empty TSDB)"
$bin/python - deploy/grafana/s3-reconciler.json "$tmp/dashboard.test.yml" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
variables = {"$namespace": ".*", "${namespace}": ".*"}
tests = []
for panel in d["panels"]:
    for target in panel.get("targets", []):
        expr = target["expr"]
        for k, v in variables.items():
            expr = expr.replace(k, v)
        assert "$" not in expr, f"panel {panel['title']!r}: unknown variable in {expr}"
        tests.append({"expr": expr, "eval_time": "0m", "exp_samples": []})
assert len(tests) >= 20, len(tests)
json.dump({"rule_files": [], "tests": [{"interval": "1m", "input_series": [],
                                        "promql_expr_test": tests}]}, open(sys.argv[2], "w"))
PY
promtool test rules "$tmp/dashboard.test.yml" >/dev/null
echo "==> example configurations equal scripts/examples.py's one source (scripts/examples.py --check)"
$bin/python scripts/examples.py --check
