#!/usr/bin/env python3
"""Bootstraps a realistic local world in the emulator (moto server).

- versioned source and target buckets (the seeds' names) and a state bucket;
- an SQS queue for permanent-delete events with a DLQ (redrive policy, maxReceiveCount 3),
  and the source bucket's notification of permanent deletes to it (as
  deploy/cloudformation/source-account.yaml configures it);
- DataSync S3 locations for both buckets and a task between them, without a schedule;
- Kafka-Connect-style partitions for several projects over the last few days (Asia/Seoul),
  under topics/<project>/year=YYYY/month=MM/day=DD/.

Prints shell exports (QUEUE_URL, DLQ_URL, TASK_ARN) for the demo.

usage: bootstrap.py ENDPOINT
"""

import datetime as dt
import json
import sys
from zoneinfo import ZoneInfo

import boto3

REGION = "ap-northeast-2"
SOURCE = "source-s3-bucket"
TARGET = "destination-s3-bucket"
STATE = "s3-reconciler-state"
QUEUE = "s3r-deletes"
DLQ = "s3r-deletes-dlq"
PROJECTS = ["vehicle-can", "vehicle-gps", "vehicle-telemetry", "vehicle-camera-meta"]
DAYS = 4


def client(service, endpoint):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def main():
    endpoint = sys.argv[1]
    s3 = client("s3", endpoint)
    sqs = client("sqs", endpoint)
    ds = client("datasync", endpoint)

    for bucket in (SOURCE, TARGET, STATE):
        try:
            s3.create_bucket(
                Bucket=bucket,
                CreateBucketConfiguration={"LocationConstraint": REGION},
            )
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
    for bucket in (SOURCE, TARGET):
        s3.put_bucket_versioning(
            Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
        )

    dlq_url = sqs.create_queue(QueueName=DLQ)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=QUEUE,
        Attributes={
            "VisibilityTimeout": "30",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"}
            ),
        },
    )["QueueUrl"]

    queue_arn = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=SOURCE,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": "s3-reconciler-permanent-deletes",
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectRemoved:Delete", "s3:LifecycleExpiration:Delete"],
                }
            ]
        },
    )

    role = "arn:aws:iam::123456789012:role/AWSDataSyncS3BucketAccess"
    src_loc = ds.create_location_s3(
        S3BucketArn=f"arn:aws:s3:::{SOURCE}",
        Subdirectory="/",
        S3Config={"BucketAccessRoleArn": role},
    )["LocationArn"]
    dst_loc = ds.create_location_s3(
        S3BucketArn=f"arn:aws:s3:::{TARGET}",
        Subdirectory="/",
        S3Config={"BucketAccessRoleArn": role},
    )["LocationArn"]
    task_arn = ds.create_task(
        SourceLocationArn=src_loc,
        DestinationLocationArn=dst_loc,
        Name=f"{SOURCE}_to_{TARGET}",
    )["TaskArn"]

    today = dt.datetime.now(ZoneInfo("Asia/Seoul")).date()
    files = 0
    for back in range(DAYS):
        day = today - dt.timedelta(days=back)
        for project in PROJECTS:
            part = f"topics/{project}/year={day:%Y}/month={day:%m}/day={day:%d}/"
            for n in range(3):
                key = f"{part}{project}+0+{n * 1000:010d}.json"
                s3.put_object(
                    Bucket=SOURCE,
                    Key=key,
                    Body=json.dumps({"project": project, "day": str(day), "n": n}).encode(),
                )
                files += 1
    print(
        f"# bootstrapped: {len(PROJECTS)} projects x {DAYS} days x 3 files = {files} objects",
        file=sys.stderr,
    )
    print(f"export QUEUE_URL={queue_url}")
    print(f"export DLQ_URL={dlq_url}")
    print(f"export TASK_ARN={task_arn}")


if __name__ == "__main__":
    main()
