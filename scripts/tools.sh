#!/usr/bin/env bash
# Installs what the deployment checks need (idempotent): cfn-lint, checkov, kubernetes-validate
# and yamllint into .venv-tools (PyPI), and promtool/prometheus from Debian's `prometheus`.
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
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  echo "==> installing Debian's prometheus (promtool)"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
