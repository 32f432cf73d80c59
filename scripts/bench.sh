#!/usr/bin/env bash
# Benchmarks against the emulator (release build). Figures are noisy on a shared 2-core machine:
# compare the ratios measured side by side in one run, and the request counts, which are exact.
# S3R_BENCH_KEYS sets the purge benchmark's key count (default 2000, about 45 minutes here: the
# emulator's ListObjectVersions cost grows with the bucket; S3R_BENCH_KEYS=300 takes ~1.5 min).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
trap 'scripts/emulator.sh stop' EXIT
scripts/emulator.sh start
eval "$(scripts/emulator.sh env)"
cargo bench --bench plan
cargo bench --bench purge
