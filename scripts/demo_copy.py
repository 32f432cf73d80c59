#!/usr/bin/env python3
"""Plays DataSync for the demo: copies one day's partitions from the source to the target
(moto's DataSync copies nothing).

usage: demo_copy.py ENDPOINT YYYY-MM-DD
"""

import sys

import boto3

SOURCE = "source-s3-bucket"
TARGET = "destination-s3-bucket"


def main():
    endpoint, day = sys.argv[1], sys.argv[2]
    y, m, d = day.split("-")
    kw = dict(endpoint_url=endpoint, region_name="ap-northeast-2",
              aws_access_key_id="testing", aws_secret_access_key="testing")
    s3 = boto3.client("s3", **kw)
    copied = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=SOURCE, Prefix="topics/"):
        for o in page.get("Contents", []):
            if f"/year={y}/month={m}/day={d}/" in o["Key"]:
                s3.copy_object(Bucket=TARGET, Key=o["Key"],
                               CopySource={"Bucket": SOURCE, "Key": o["Key"]})
                copied += 1
    print(f"   copied {copied} object(s) of {day} into s3://{TARGET}")


if __name__ == "__main__":
    main()
