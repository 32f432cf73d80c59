#!/usr/bin/env python3
"""Demo of permanent-delete propagation (used by `make demo`).

1. A key exists in the source and in the target (the target copy has older versions and a
   delete marker, as replication leaves them; moto's DataSync copies nothing, so we write it),
   next to a look-alike `.bak` that exists on both sides.
2. Every version of the key is permanently deleted in the source.
3. The S3 event notification is put on the queue (moto does not emit correct notifications
   for versioned buckets, so we send the event real S3 would send).
4. We wait until the daemon has purged the target's versions and delete marker, and show that
   a look-alike key (`.bak`) is untouched.

usage: demo_purge.py ENDPOINT QUEUE_URL
"""

import datetime as dt
import json
import sys
import time
import urllib.parse

import boto3

SOURCE = "source-s3-bucket"
TARGET = "destination-s3-bucket"
KEY = "topics/vehicle-gps/year=2024/month=12/day=14/차량 위치+1.json"


def entries(s3, bucket, key):
    out = []
    page = s3.list_object_versions(Bucket=bucket, Prefix=key)
    for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
        if v["Key"] == key:
            out.append(("marker " if "ETag" not in v else "version ") + v["VersionId"])
    return out


def main():
    endpoint, queue = sys.argv[1], sys.argv[2]
    kw = dict(endpoint_url=endpoint, region_name="ap-northeast-2",
              aws_access_key_id="testing", aws_secret_access_key="testing")
    s3, sqs = boto3.client("s3", **kw), boto3.client("sqs", **kw)

    s3.put_object(Bucket=SOURCE, Key=KEY, Body=b"v1")
    for body in (b"v1", b"v2"):
        s3.put_object(Bucket=TARGET, Key=KEY, Body=body)
    s3.delete_object(Bucket=TARGET, Key=KEY)
    # A look-alike that really exists (in the source, and synced to the target): the seed
    # Lambda's Prefix=key listing would have deleted it with the key.
    for bucket in (SOURCE, TARGET):
        s3.put_object(Bucket=bucket, Key=KEY + ".bak", Body=b"look-alike")
    print(f"  target before: s3://{TARGET}/{KEY}: {entries(s3, TARGET, KEY)}")

    page = s3.list_object_versions(Bucket=SOURCE, Prefix=KEY)
    for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
        if v["Key"] == KEY:
            s3.delete_object(Bucket=SOURCE, Key=KEY, VersionId=v["VersionId"])
            last = v["VersionId"]
    print(f"  source after permanent delete: {entries(s3, SOURCE, KEY)}")
    time.sleep(1.2)  # past the race-guard margin of config/local.toml

    event = {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "ap-northeast-2",
        "eventTime": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "eventName": "ObjectRemoved:Delete",
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "permanent-deletes",
               "bucket": {"name": SOURCE, "arn": f"arn:aws:s3:::{SOURCE}"},
               "object": {"key": urllib.parse.quote_plus(KEY, safe="/"), "versionId": last,
                          "sequencer": "0055AED6DCD90281E5"}}}]}
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(event))
    print(f"  event sent (key as S3 encodes it: {event['Records'][0]['s3']['object']['key']})")

    deadline = time.time() + 30
    while entries(s3, TARGET, KEY) and time.time() < deadline:
        time.sleep(0.3)
    left = entries(s3, TARGET, KEY)
    print(f"  target after:  {left if left else 'nothing left'}")
    print(f"  look-alike {KEY}.bak: {entries(s3, TARGET, KEY + '.bak')}")
    sys.exit(1 if left else 0)


if __name__ == "__main__":
    main()
