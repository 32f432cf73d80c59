#!/usr/bin/env bash
# Creates .venv with the emulator (idempotent: reinstalls only when the requirements change).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
req="$root/scripts/requirements-emulator.txt"
stamp="$root/.venv/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ -x "$root/.venv/bin/moto_server" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
echo "==> installing the emulator into .venv (moto[server]==5.2.5)"
python3 -m venv "$root/.venv"
"$root/.venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
echo "$want" > "$stamp"
