#!/usr/bin/env bash
# Puts each planted defect (tests/plants/*.patch) back into the code, one at a time, then
# runs the simulation's default seeds and the defect's own regression test against it, and
# says which seeds caught it. The code is restored after each, and on exit. Each patch's first
# lines name the defect, its regression test, the simulation that should catch it
# (`# simulation-test: sync_simulation`; default: the safety simulation), and whether it must
# (`# simulation: not required`: a defect that costs liveness only, like a key sent to the DLQ
# with its reason, breaks no invariant the simulation judges).
#   scripts/plants.sh [tests/plants/X.patch ...]    (default: every plant)
# Needs the emulator for regression tests that run on it: `make test` once, or
# `scripts/emulator.sh start && eval "$(scripts/emulator.sh env)"`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [ -n "$(git status --porcelain -- src)" ]; then
  echo "src/ has uncommitted changes: commit or stash them first" >&2
  exit 1
fi
trap 'git checkout -q -- src' EXIT
scripts/lab.sh build
status=0
for plant in "${@:-tests/plants/*.patch}"; do
  for p in $plant; do
    name=$(sed -n '1s/^# //p' "$p")
    regression=$(sed -n 's/^# regression: //p' "$p")
    simtest=$(sed -n 's/^# simulation-test: //p' "$p")
    if ! git apply "$p"; then
      echo "$name: the patch no longer applies; regenerate it against the current code"
      status=1
      continue
    fi
    sim=$(cargo test --quiet --test "${simtest:-simulation}" -- --nocapture 2>&1 || true)
    caught=$(printf '%s\n' "$sim" | sed -n 's/.*seeds with violations: \[\(.*\)\].*/\1/p' | tail -1)
    # shellcheck disable=SC2086
    if cargo test --quiet $regression >/dev/null 2>&1; then
      reg="PASSED (it should fail)"
      status=1
    else
      reg="failed, as it should"
    fi
    if [ -z "$caught" ] && grep -q '^# simulation: not required' "$p"; then
      echo "$name: not caught by the simulation (not required); regression test $reg"
    elif [ -z "$caught" ]; then
      echo "$name: NOT caught by the simulation; regression test $reg"
      status=1
    else
      echo "$name: caught by seeds [$caught]; regression test $reg"
    fi
    git checkout -q -- src
  done
done
exit $status
