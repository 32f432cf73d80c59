#!/usr/bin/env bash
# The latency lab (lab/): a loopback S3 and SQS subset with injected latency.
#   scripts/lab.sh build                      # builds it (release): tests start their own
#   scripts/lab.sh start [LATENCY [JITTER]]   # builds (release) and starts it; default 20ms 5ms
#   scripts/lab.sh stop
#   scripts/lab.sh env                        # the exports tests and benchmarks use
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
state="$root/.emulator"
running() { [ -f "$state/lab.pid" ] && kill -0 "$(cat "$state/lab.pid")" 2>/dev/null; }
case "${1:-}" in
  build)
    cargo build --quiet --release --locked --manifest-path "$root/lab/Cargo.toml"
    ;;
  start)
    latency=${2:-20ms}
    jitter=${3:-5ms}
    mkdir -p "$state"
    if running; then echo "lab already running at $(cat "$state/lab.addr")"; exit 0; fi
    cargo build --quiet --release --locked --manifest-path "$root/lab/Cargo.toml"
    "$root/lab/target/release/s3r-lab" --latency "$latency" --jitter "$jitter" >"$state/lab.out" 2>"$state/lab.log" &
    echo $! >"$state/lab.pid"
    for _ in $(seq 100); do
      addr=$(sed -n 's/^listening on //p' "$state/lab.out" 2>/dev/null || true)
      [ -n "$addr" ] && break
      sleep 0.1
    done
    [ -n "$addr" ] || { echo "the lab did not start; see $state/lab.log" >&2; exit 1; }
    echo "$addr" >"$state/lab.addr"
    echo "lab up at $addr (latency $latency ± $jitter)"
    ;;
  stop)
    if running; then kill "$(cat "$state/lab.pid")" 2>/dev/null || true; fi
    rm -f "$state/lab.pid" "$state/lab.addr"
    ;;
  env)
    [ -f "$state/lab.addr" ] || { echo "lab not started: run scripts/lab.sh start" >&2; exit 1; }
    cat <<ENV
export S3R_TEST_ENDPOINT=$(cat "$state/lab.addr")
export S3R_LAB_PID=$(cat "$state/lab.pid")
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=ap-northeast-2
export AWS_EC2_METADATA_DISABLED=true
ENV
    ;;
  *) echo "usage: $0 build|start [LATENCY [JITTER]]|stop|env" >&2; exit 64 ;;
esac
