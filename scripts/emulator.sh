#!/usr/bin/env bash
# Local AWS emulator (moto server) on 127.0.0.1 and a free port.
#   scripts/emulator.sh start   # installs the venv if needed, starts, waits until it answers
#   scripts/emulator.sh stop
#   scripts/emulator.sh restart # a fresh process on the same port (moto only frees memory on exit)
#   scripts/emulator.sh env     # prints the exports tests and the demo use
# S3R_EMULATOR_PORT pins the port (restart uses it to keep the address tests were given).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
state="$root/.emulator"
py="$root/.venv/bin/python"

running() { [ -f "$state/pid" ] && kill -0 "$(cat "$state/pid")" 2>/dev/null; }

# Stops the emulator and waits until it has exited, so its port and memory are free again.
stop() {
  if running; then
    pid=$(cat "$state/pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$state/pid"
}

case "${1:-}" in
  start)
    "$root/scripts/venv.sh"
    mkdir -p "$state"
    if running; then echo "emulator already running on port $(cat "$state/port")"; exit 0; fi
    if [ -n "${S3R_EMULATOR_PORT:-}" ]; then
      port=$S3R_EMULATOR_PORT
    else
      port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    fi
    # Through our launcher: moto with the fixes scripts/moto_server.py describes.
    nohup "$py" "$root/scripts/moto_server.py" -H 127.0.0.1 -p "$port" >"$state/moto.log" 2>&1 &
    echo $! >"$state/pid"
    echo "$port" >"$state/port"
    "$py" - "$port" <<'PY'
import sys, time, urllib.request
port = sys.argv[1]
deadline = time.time() + 60
while time.time() < deadline:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/data.json", timeout=2)
        sys.exit(0)
    except Exception:
        time.sleep(0.3)
sys.exit("emulator did not answer within 60s; see .emulator/moto.log")
PY
    echo "emulator up at http://127.0.0.1:$port (log: .emulator/moto.log)"
    ;;
  stop)
    stop
    rm -f "$state/port"
    ;;
  restart)
    [ -f "$state/port" ] || { echo "emulator not started: run scripts/emulator.sh start" >&2; exit 1; }
    port=$(cat "$state/port")
    stop
    S3R_EMULATOR_PORT=$port "$0" start
    ;;
  env)
    [ -f "$state/port" ] || { echo "emulator not started: run scripts/emulator.sh start" >&2; exit 1; }
    port=$(cat "$state/port")
    cat <<ENV
export S3R_TEST_ENDPOINT=http://127.0.0.1:$port
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=ap-northeast-2
export AWS_EC2_METADATA_DISABLED=true
ENV
    ;;
  *) echo "usage: $0 start|stop|restart|env" >&2; exit 64 ;;
esac
