#!/usr/bin/env bash
# The whole test suite, as CI runs it: lint, deployment-artifact checks, unit and integration
# tests against the emulator, the purge and sweep tests again against the latency lab (both
# stopped even when something fails), then the container image's build replayed without
# Docker.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
trap 'scripts/emulator.sh stop; scripts/lab.sh stop' EXIT
# CI builds a fresh clone once: incremental caches would only add gigabytes to its disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
scripts/tools.sh
scripts/emulator.sh start
eval "$(scripts/emulator.sh env)"
echo "==> cargo fmt --check (daemon, lab)"
cargo fmt --all -- --check
cargo fmt --manifest-path lab/Cargo.toml --all -- --check
echo "==> cargo clippy --all-targets -- -D warnings (daemon, lab)"
cargo clippy --all-targets --quiet -- -D warnings
cargo clippy --manifest-path lab/Cargo.toml --all-targets --quiet -- -D warnings
echo "==> every planted defect (tests/plants, make plants) still applies to the code"
for plant in tests/plants/*.patch; do
  git apply --check "$plant" || { echo "$plant no longer applies: regenerate it" >&2; exit 1; }
done
echo "==> deployment artifacts"
scripts/validate-deploy.sh
echo "==> the deployment guide (docs/deploy-accounts.md), rehearsed on the emulator (scripts/rehearse-deploy.py)"
.venv/bin/python scripts/rehearse-deploy.py
echo "==> the latency lab (tests that need it start their own)"
scripts/lab.sh build
echo "==> cargo test (unit + integration against $S3R_TEST_ENDPOINT)"
cargo test --lib --bins --tests --no-fail-fast
echo "==> the example configurations through check-config (scripts/examples.py)"
.venv-tools/bin/python scripts/examples.py --check-config target/debug/s3-reconciler
echo "==> the man pages and completions (make man)"
make --no-print-directory man NO_BUILD=1
test -s target/man/s3-reconciler.1 && test -s target/man/s3-reconciler-sweep.1
echo "==> the latency lab's own tests, then the purge and sweep tests against it (5 ms ± 2 ms)"
cargo test --manifest-path lab/Cargo.toml --quiet
scripts/lab.sh start 5ms 2ms
(eval "$(scripts/lab.sh env)" && cargo test --test purge --test sweep --no-fail-fast)
scripts/lab.sh stop
echo "==> the Dockerfile's stages, replayed without a Docker engine (release build, Debian 12 run)"
scripts/replay-dockerfile.py
echo "==> disk used by the build outputs (a runner's disk once filled up at the lab's build)"
du -sh target lab/target
