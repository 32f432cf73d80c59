#!/usr/bin/env bash
# Benchmarks (release builds). Figures are noisy on a shared 2-core machine: compare the ratios
# measured side by side in one run, and the request counts, which are exact.
#
# 1. plan: filter computation (criterion).
# 2. lab: the purge and the sweep against the latency lab (lab/, 20 ms ± 5 ms per request), the
#    headline figures. Sizes: S3R_BENCH_SCATTERED (10000), S3R_BENCH_SERIAL (500),
#    S3R_BENCH_BURST (100000), S3R_BENCH_SWEEP_KEYS (500000 keys x 2 versions); case (d), a
#    sparse target swept by the full and the target-driven walk side by side; case (e), a dense
#    replicated prefix (S3R_BENCH_DENSE_KEYS, 1000000 a side): one stream against 8 shards at
#    once, one process against two sharing the run. S3R_BENCH_CASES=abcde picks the cases.
# 3. purge on moto, end to end against the emulator; S3R_BENCH_KEYS (300 by default: moto's
#    ListObjectVersions cost grows with the bucket, so this measures moto more than the daemon).
# S3R_BENCH_ONLY=lab|moto|plan runs one of them.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
only=${S3R_BENCH_ONLY:-}
want() { [ -z "$only" ] || [ "$only" = "$1" ]; }
trap 'scripts/lab.sh stop; scripts/emulator.sh stop' EXIT

if want plan; then cargo bench --bench plan; fi

if want lab; then
  scripts/lab.sh start 20ms 5ms
  (eval "$(scripts/lab.sh env)" && cargo bench --bench lab)
  scripts/lab.sh stop
fi

if want moto; then
  scripts/emulator.sh start
  (eval "$(scripts/emulator.sh env)" && S3R_BENCH_KEYS=${S3R_BENCH_KEYS:-300} cargo bench --bench purge)
fi
