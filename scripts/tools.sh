#!/usr/bin/env bash
# Installs what the deployment checks need (idempotent): cfn-lint, checkov, kubernetes-validate,
# yamllint and hadolint into .venv-tools (PyPI), promtool/prometheus from Debian's `prometheus`,
# jq (Debian) for the deployment rehearsal, and debootstrap (Debian) for running the release
# binary in a Debian 12 userland; checks that kubectl is there.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
req="$root/scripts/requirements-tools.txt"
stamp="$root/.venv-tools/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -x "$root/.venv-tools/bin/checkov" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing deployment validators into .venv-tools"
  python3 -m venv "$root/.venv-tools"
  "$root/.venv-tools/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  echo "$want" > "$stamp"
fi
# kubectl (with its built-in kustomize) builds deploy/kubernetes; the machine image has it.
command -v kubectl >/dev/null 2>&1 || {
  echo "kubectl is required to build deploy/kubernetes (kubectl kustomize); install kubectl 1.27 or later" >&2
  exit 1
}
missing=""
command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || missing="$missing prometheus"
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing="$missing debootstrap"
# jq runs the deployment's merge filters (deploy/aws/*.jq) in the rehearsal.
command -v jq >/dev/null 2>&1 || missing="$missing jq"
if [ -n "$missing" ]; then
  echo "==> installing Debian packages:$missing"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
