#!/usr/bin/env bash
# `make demo`: the daemon against the local emulator, showing the doctor's checks, a sync and
# its verification, a purge, and a sweep.
# DEMO_EXIT=1 stops after the demonstration instead of leaving the daemon running.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; wait "$pid" || true; fi
  scripts/emulator.sh stop
}
trap cleanup EXIT
py=.venv/bin/python

scripts/emulator.sh start
eval "$(scripts/emulator.sh env)"
eval "$($py scripts/bootstrap.py "$S3R_TEST_ENDPOINT")"
port=${DEMO_PORT:-9090}
export S3R__SOURCE__ENDPOINT_URL=$S3R_TEST_ENDPOINT S3R__TARGET__ENDPOINT_URL=$S3R_TEST_ENDPOINT
export S3R__CONTROL__ENDPOINT_URL=$S3R_TEST_ENDPOINT
export S3R__PURGE__QUEUE_URL=$QUEUE_URL S3R__SYNC__TASK_ARN=$TASK_ARN
export S3R__HTTP__LISTEN=127.0.0.1:$port
cargo build --quiet
bin=target/debug/s3-reconciler
log=.emulator/daemon.log

echo
echo "== 0. doctor: is the (emulated) AWS wired the way config/local.toml assumes?"
$bin --config config/local.toml doctor 2>/dev/null | sed 's/^/   /' | cut -c1-200

echo
echo "== 1. Yesterday's (D-1, Asia/Seoul) include filter, computed from the source's projects"
$bin --config config/local.toml sync --dry-run

echo
echo "== 2. Starting the daemon (config/local.toml + S3R__* overrides); log: $log"
$bin --config config/local.toml run 2>"$log" &
pid=$!
$py - "$port" <<'PY'
import json, sys, time, urllib.request
port = sys.argv[1]
deadline = time.time() + 60
while time.time() < deadline:
    try:
        st = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=2))
        sync = st["tasks"].get("sync", {}).get("details", {})
        if sync.get("last_run") and urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2).status == 200:
            print("   ready; sync last run:", json.dumps(sync["last_run"]))
            print("   next scheduled run:", sync.get("next_run"))
            sys.exit(0)
    except Exception:
        pass
    time.sleep(0.5)
sys.exit("daemon did not become ready; see .emulator/daemon.log")
PY

echo
echo "== 3. The sync at start-up (catch-up of the last scheduled run), then its verification"
grep -E "planned sync|started DataSync execution|verif|follow-up|sync succeeded" "$log" | sed 's/^/   /' | cut -c1-240
day=$($py -c "import json, sys, urllib.request; print(json.load(urllib.request.urlopen('http://127.0.0.1:$port/status'))['tasks']['sync']['details']['last_run']['date'])")
# The verify summary, in one short line.
summary() {
  $py -c "import json, sys; s = json.loads(sys.stdin.read().splitlines()[-1]); print('   verify: ' + ' '.join(f'{k}={s[k]}' for k in ('partitions', 'expected', 'present', 'missing', 'size_mismatched', 'extra', 'complete')))"
}
echo "   The emulator's DataSync copies nothing, so $day is incomplete, not a success:"
$bin --config config/local.toml verify --date "$day" 2>/dev/null | summary || true

echo
echo "== 4. Playing DataSync by hand: copy $day's partitions, then verify again"
$py scripts/demo_copy.py "$S3R_TEST_ENDPOINT" "$day"
if $bin --config config/local.toml verify --date "$day" 2>/dev/null | summary; then
  echo "   verify exit 0: every object of $day is in the target"
fi

echo
echo "== 5. Purge: a key permanently deleted in the source disappears from the target"
$py scripts/demo_purge.py "$S3R_TEST_ENDPOINT" "$QUEUE_URL"
sleep 0.5
echo "   audit lines (intent before the request, result after):"
grep -E '"action":"(deleting|delete)"' "$log" | sed 's/^/   /' | cut -c1-240 || grep -E "deleting target entry|deleted target entry" "$log" | sed 's/^/   /' | cut -c1-240

echo
echo "== 6. Sweep: a target key whose delete event was lost is found and purged"
orphan="topics/vehicle-gps/year=2020/month=01/day=01/lost-event.json"
$py - "$S3R_TEST_ENDPOINT" "$orphan" <<'PY'
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="ap-northeast-2",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
s3.put_object(Bucket="destination-s3-bucket", Key=sys.argv[2], Body=b"orphan")
print(f"   planted s3://destination-s3-bucket/{sys.argv[2]} (nothing in the source, no event)")
PY
sleep 2.5  # past sweep.min_age in config/local.toml
echo "   report first (sweep.action = report, the default): decided, nothing deleted"
$bin --config config/local.toml sweep 2>/dev/null | sed 's/^/   /' | cut -c1-240
echo "   then purge (--purge), within sweep.max_deletes"
$bin --config config/local.toml sweep --purge 2>/dev/null | sed 's/^/   /' | cut -c1-240

echo
echo "== 7. Metrics"
$py -c "import urllib.request,sys; print(urllib.request.urlopen('http://127.0.0.1:$port/metrics').read().decode())" \
  | grep -E '^s3_reconciler_(purge_events_total\{result="purged"|purge_target_entries_deleted_total|sync_runs_total\{result="(success|incomplete)"|sync_verifications_total|sync_verify_objects\{state="(missing|present)"|purge_dlq_configured|preflight_last_run_timestamp_seconds|build_info)' | sed 's/^/   /'

echo
echo "Metrics: http://127.0.0.1:$port/metrics   Status: http://127.0.0.1:$port/status   Readiness: http://127.0.0.1:$port/readyz"
if [ "${DEMO_EXIT:-0}" = "1" ]; then exit 0; fi
echo "The daemon keeps running against the emulator; Ctrl-C stops it gracefully."
wait "$pid" || true
