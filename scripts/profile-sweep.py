#!/usr/bin/env python3
"""Where a sweep spends its CPU per ListObjectVersions page.

Seeds the latency lab (no latency: the run is CPU-bound) with a dense prefix on both sides,
runs `sweep --dry-run` of it once to measure the CPU per page, then once under `perf record`,
and sorts the samples into what they were spent on: the SDK's XML deserializer, the lean
reader, timestamps, allocation, the walk and merge-join, HTTP and signing, the runtime, the
kernel.

    .venv/bin/python scripts/profile-sweep.py [BINARY]

BINARY defaults to the `profiling` build (`cargo build --profile profiling`: release code with
symbols). S3R_PROFILE_KEYS (200000) keys a side.
"""

import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CATEGORIES = [
    ("SDK XML deserializer", r"aws_smithy_xml|protocol_serde|xmlparser|de_list_object_versions|ObjectVersionBuilder|DeleteMarkerEntryBuilder"),
    ("lean XML reader", r"quick_xml|aws::s3::lean"),
    ("timestamps", r"date_time|chrono|rfc3339|DateTime"),
    ("allocation", r"malloc|free|realloc|calloc|_int_|alloc::|drop_in_place|cfree"),
    ("copying and byte scans", r"memcpy|memmove|memset|memchr|memcmp"),
    ("walk and merge-join", r"s3_reconciler::(merge|sweep)|Joined|MergeJoin"),
    ("url decoding and page checks", r"url_decode|version_page|page_entries|merge_by_key"),
    ("HTTP, signing, checksums", r"hyper|h2::|http::|httparse|sigv4|sha2|hmac|crc|md5|aws_smithy_http|aws_smithy_runtime"),
    ("tokio runtime", r"tokio"),
]


def lab_env():
    out = subprocess.run([f"{ROOT}/scripts/lab.sh", "env"], capture_output=True, text=True, check=True).stdout
    return dict(re.findall(r"export (\w+)=(\S+)", out))


def admin(endpoint, method, path, body=None):
    req = urllib.request.Request(f"{endpoint}/_lab/{path}", data=json.dumps(body or {}).encode(), method=method)
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read() or b"null")


def run(cmd, env):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, time.monotonic() - start


def categorize(report):
    shares = {name: 0.0 for name, _ in CATEGORIES}
    shares["kernel"] = 0.0
    shares["other"] = 0.0
    for line in report.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)", line)
        if not m:
            continue
        pct, dso, kind, sym = float(m.group(1)), m.group(2), m.group(3), m.group(4)
        if kind == "k" or dso.startswith("[kernel"):
            shares["kernel"] += pct
            continue
        for name, pattern in CATEGORIES:
            if re.search(pattern, sym):
                shares[name] += pct
                break
        else:
            shares["other"] += pct
    return shares


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else None
    if binary is None:
        subprocess.run(["cargo", "build", "--profile", "profiling", "--bin", "s3-reconciler"], cwd=ROOT, check=True)
        binary = f"{ROOT}/target/profiling/s3-reconciler"
    keys = int(os.environ.get("S3R_PROFILE_KEYS", "200000"))
    subprocess.run([f"{ROOT}/scripts/lab.sh", "start", "0ms", "0ms"], check=True)
    try:
        env = {**os.environ, **lab_env()}
        endpoint = env["S3R_TEST_ENDPOINT"]
        s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="ap-northeast-2")
        tag = uuid.uuid4().hex[:8]
        src, tgt, state = f"prof-src-{tag}", f"prof-tgt-{tag}", f"prof-state-{tag}"
        for b in (src, tgt, state):
            s3.create_bucket(Bucket=b, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-2"})
        for b in (src, tgt):
            s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
        per = keys // 200
        for p in range(20):
            for d in range(10):
                for b in (src, tgt):
                    admin(endpoint, "POST", "seed", {"bucket": b, "prefix": f"dense/p{p:02}/day={d:03}/f-",
                                                     "count": per, "width": 6, "suffix": ".json",
                                                     "versions": 1, "delete_marker": False, "age_seconds": 3600})
        cfg = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
        cfg.write(f"""[source]
bucket = "{src}"
region = "ap-northeast-2"
endpoint_url = "{endpoint}"
[target]
bucket = "{tgt}"
region = "ap-northeast-2"
endpoint_url = "{endpoint}"
[state]
bucket = "{state}"
[log]
format = "json"
level = "warn"
[sweep]
prefixes = ["dense/"]
min_age = "1s"
parallelism = 1
shard_depth = 0
""")
        cfg.close()
        cmd = [binary, "--config", cfg.name, "sweep", "--dry-run", "--no-progress"]
        admin(endpoint, "POST", "stats/reset")
        cpu, wall = run(cmd, env)
        pages = admin(endpoint, "GET", "stats").get("s3:ListObjectVersions", 0)
        data = tempfile.mktemp(suffix=".perf")
        run(["perf", "record", "-q", "-F", "1999", "-g", "-o", data, "--"] + cmd, env)
        report = subprocess.run(["perf", "report", "-i", data, "--no-children", "--stdio", "--sort", "dso,sym",
                                 "-g", "none", "--percent-limit", "0"], capture_output=True, text=True).stdout
        os.unlink(data)
        shares = categorize(report)
        per_page = 1000 * cpu / max(pages, 1)
        print(f"{binary}: {2 * per * 200} entries, {pages} ListObjectVersions pages, "
              f"{cpu:.2f} s CPU in {wall:.1f} s: {per_page:.2f} ms CPU a page")
        for name, pct in sorted(shares.items(), key=lambda kv: -kv[1]):
            print(f"  {name:<30} {pct:6.1f}%  {per_page * pct / 100:6.2f} ms a page")
        top = [l for l in report.splitlines() if re.match(r"\s*[\d.]+%", l)][:25]
        print("  top symbols:")
        for l in top:
            print("   ", l.strip()[:150])
    finally:
        subprocess.run([f"{ROOT}/scripts/lab.sh", "stop"])


if __name__ == "__main__":
    main()
