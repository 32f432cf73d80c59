#!/usr/bin/env bash
# The whole test suite, as CI runs it: lint, deployment-artifact checks, unit and integration
# tests against the emulator (stopped even when something fails), then the container image's
# build replayed without Docker.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
trap 'scripts/emulator.sh stop' EXIT
scripts/tools.sh
scripts/emulator.sh start
eval "$(scripts/emulator.sh env)"
echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings
echo "==> deployment artifacts"
scripts/validate-deploy.sh
echo "==> cargo test (unit + integration against $S3R_TEST_ENDPOINT)"
cargo test --lib --bins --tests --no-fail-fast
echo "==> the Dockerfile's stages, replayed without a Docker engine (release build, Debian 12 run)"
scripts/replay-dockerfile.py
