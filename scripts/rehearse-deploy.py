#!/usr/bin/env python3
"""The deployment guide (docs/deploy-accounts.md), rehearsed on the emulator, starting from
the console-made setup s3-reconciler replaces.

Three paths, each from a fresh copy of that world (buckets with a notification and a bucket
policy of their own, the console's DataSync roles, locations and task):
  console-task  keep the console task: its roles named at step 1, no step 3;
  new-task      the stack's own roles, step 2 letting the location creator list the bucket,
                and that statement removed again after step 3;
  replication   the replication role at step 1, admitted at step 2, its rule merged at step 3.
Every step runs what the guide says with the same API calls (boto3 here, the AWS CLI
there) and the same jq filters (deploy/aws/*.jq), and checks the step's documented
precondition: no name collisions, foreign notifications, policy statements and replication
rules kept, every value a step needs produced by an earlier one. What the emulator cannot run
(DataSync resources in CloudFormation, EventBridge delivery, cross-account policy
evaluation; AWS::S3::BucketPolicy, which this script renders and puts itself) is left to the
custom cfn-lint rules and the written cross-check
(docs/deploy-crosscheck.md).

Usage: S3R_TEST_ENDPOINT=http://127.0.0.1:PORT .venv/bin/python scripts/rehearse-deploy.py
"""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

import cfn_template

ROOT = Path(__file__).resolve().parent.parent
CFN = ROOT / "deploy" / "cloudformation"
JQ = ROOT / "deploy" / "aws"
REGION = "ap-northeast-2"
DESTINATION_ACCOUNT = "222222222222"
ENDPOINT = os.environ.get("S3R_TEST_ENDPOINT") or sys.exit(
    "S3R_TEST_ENDPOINT is not set: start the emulator (scripts/emulator.sh start) and "
    'eval "$(scripts/emulator.sh env)"'
)


def client(service):
    return boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
    )


s3, iam, datasync, cfn, sqs, events = (
    client(s) for s in ("s3", "iam", "datasync", "cloudformation", "sqs", "events")
)


class RehearsalFailed(Exception):
    pass


def check(ok, what):
    if not ok:
        raise RehearsalFailed(what)
    print(f"    ok: {what}")


def jq(filter_file, document, *args, raw=False):
    """Runs one of deploy/aws/*.jq as the guide does (`jq --slurp`)."""
    cmd = ["jq", "--slurp", "-f", str(JQ / filter_file), *args]
    if raw:
        cmd.insert(1, "--raw-output")
    done = subprocess.run(cmd, input=document, capture_output=True, text=True)
    if done.returncode != 0:
        raise RehearsalFailed(f"jq -f {filter_file}: {done.stderr.strip()}")
    return done.stdout.strip()


def cli_output(response):
    """What `aws ... --output json` prints for a response: no ResponseMetadata, and nothing at
    all when nothing else is left."""
    body = {k: v for k, v in response.items() if k != "ResponseMetadata"}
    return json.dumps(body, default=str) if body else ""


# -- the console-made setup it replaces -------------------------------------------------


class World:
    """Two buckets as the console-made setup left them, under names unique to this path."""

    def __init__(self, path, bare=False):
        tag = f"{path}-{uuid.uuid4().hex[:6]}"
        self.path = path
        self.source = f"source-{tag}"
        self.destination = f"destination-{tag}"
        self.logs = f"logs-{tag}"
        for b in (self.source, self.destination, self.logs):
            s3.create_bucket(Bucket=b, CreateBucketConfiguration={"LocationConstraint": REGION})
        for b in (self.source, self.destination):
            s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
        # Another team's consumer of the source bucket's events.
        analytics = sqs.create_queue(QueueName=f"analytics-{tag}")["QueueUrl"]
        self.analytics_arn = sqs.get_queue_attributes(
            QueueUrl=analytics, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        self.foreign_notification = {
            "QueueConfigurations": [
                {
                    "Id": "analytics-new-objects",
                    "QueueArn": self.analytics_arn,
                    "Events": ["s3:ObjectCreated:*"],
                }
            ]
        }
        if bare:
            # A bucket with no notification at all: S3 answers an empty document.
            self.foreign_notification = {}
        else:
            s3.put_bucket_notification_configuration(
                Bucket=self.source, NotificationConfiguration=self.foreign_notification
            )
        # The console's DataSync roles, named as the console names them.
        trust = json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "datasync.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        )
        self.console_roles = {}
        for name in (
            f"AWSDataSyncS3BucketAccess-{self.source}"[:64],
            f"{self.source}_to_{self.destination}"[:64],
        ):
            self.console_roles[name] = iam.create_role(
                RoleName=name, AssumeRolePolicyDocument=trust
            )["Role"]["Arn"]
        source_role, destination_role = self.console_roles.values()
        # The DataSync tutorial's bucket policy, plus a statement another team added.
        self.foreign_statements = [
            {
                "Sid": "DataSyncCreateS3LocationAndTaskAccess",
                "Effect": "Allow",
                "Principal": {"AWS": destination_role},
                "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
                "Resource": f"arn:aws:s3:::{self.destination}",
            },
            {
                "Sid": "AuditorsRead",
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::333333333333:role/auditors"},
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{self.destination}/*",
            },
        ]
        if bare:
            # A policy of one statement, written as an object rather than a list.
            self.foreign_statements = self.foreign_statements[:1]
            statements = self.foreign_statements[0]
        else:
            statements = self.foreign_statements
        s3.put_bucket_policy(
            Bucket=self.destination,
            Policy=json.dumps({"Version": "2012-10-17", "Statement": statements}),
        )
        # The console task and its two locations.
        self.source_location = datasync.create_location_s3(
            S3BucketArn=f"arn:aws:s3:::{self.source}",
            Subdirectory="/",
            S3Config={"BucketAccessRoleArn": source_role},
        )["LocationArn"]
        self.destination_location = datasync.create_location_s3(
            S3BucketArn=f"arn:aws:s3:::{self.destination}",
            Subdirectory="/",
            S3Config={"BucketAccessRoleArn": destination_role},
        )["LocationArn"]
        self.task_arn = datasync.create_task(
            SourceLocationArn=self.source_location,
            DestinationLocationArn=self.destination_location,
            Name=f"{self.source}_to_{self.destination}",
        )["TaskArn"]


# -- CloudFormation as the guide runs it -------------------------------------------------


def template_doc(template):
    """The template decoded as CloudFormation reads it (short-form tags made long)."""
    try:
        return cfn_template.load(CFN / template)
    except cfn_template.NotEvaluated as e:
        raise RehearsalFailed(str(e))


def as_json(template):
    """The template as JSON: the emulator's YAML reader turns `!Condition` into an
    `Fn::Condition` it then evaluates as false (CloudFormation reads both forms alike)."""
    return json.dumps(template_doc(template))


def deploy(stack, template, params, update=False):
    """What `aws cloudformation deploy --parameter-overrides` does: create the stack, or
    update it with the parameters given and every other one at its previous value."""
    given = [{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()]
    if update:
        previous = cfn.describe_stacks(StackName=stack)["Stacks"][0].get("Parameters", [])
        # UsePreviousValue, spelled out: the emulator fails on it for a defaulted parameter.
        given += [
            {"ParameterKey": p["ParameterKey"], "ParameterValue": p["ParameterValue"]}
            for p in previous
            if p["ParameterKey"] not in params
        ]
    call = cfn.update_stack if update else cfn.create_stack
    call(
        StackName=stack,
        TemplateBody=as_json(template),
        Parameters=given,
        Capabilities=["CAPABILITY_IAM"],
    )
    description = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    want = "UPDATE_COMPLETE" if update else "CREATE_COMPLETE"
    check(
        description["StackStatus"] == want,
        f"{template} {'updated' if update else 'created'} as {stack} ({description['StackStatus']})",
    )
    return {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])}


def apply_bucket_policy(template, params):
    """What CloudFormation does for DestinationBucketPolicy: the rendered document must be
    valid JSON (ExtraPolicyStatements is spliced into it) and S3 must accept it."""
    # The emulator's CloudFormation does not implement AWS::S3::BucketPolicy: the resource's
    # properties are evaluated here (scripts/cfn_template.py) and applied as S3 would.
    stack = cfn_template.Template(
        template_doc(template), params, {"AWS::Partition": "aws", "AWS::Region": REGION}
    )
    try:
        props = stack.properties("DestinationBucketPolicy")
    except cfn_template.NotEvaluated as e:
        raise RehearsalFailed(f"{template}: {e}")
    document = props["PolicyDocument"]
    try:
        policy = json.loads(document) if isinstance(document, str) else document
    except json.JSONDecodeError as e:
        raise RehearsalFailed(f"the rendered bucket policy is not JSON ({e}):\n{document}")
    ids = [st.get("Sid") for st in policy["Statement"] if st.get("Sid")]
    check(len(ids) == len(set(ids)), f"the rendered policy's Sids are unique (S3 refuses repeats): {ids}")
    s3.put_bucket_policy(Bucket=props["Bucket"], Policy=json.dumps(policy))


def declared_parameters(template):
    """The parameters a template declares, and which of them have no default."""
    text = (CFN / template).read_text()
    section = text.split("\nParameters:\n", 1)[1].split("\nConditions:\n", 1)[0]
    params, current = {}, None
    for line in section.splitlines():
        if line.startswith("  ") and not line.startswith("   ") and line.strip().endswith(":"):
            current = line.strip()[:-1]
            params[current] = False
        elif current and line.strip().startswith("Default:"):
            params[current] = True
    return params


def check_parameters(template, params):
    declared = declared_parameters(template)
    unknown = sorted(set(params) - set(declared))
    check(not unknown, f"{template}: every parameter the step sets is declared {unknown or ''}")
    missing = sorted(p for p, has_default in declared.items() if not has_default and p not in params)
    check(not missing, f"{template}: every parameter without a default is given {missing or ''}")


def physical_names(stack):
    # The emulator lists some resources (queue and bucket policies) without ids.
    return {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.describe_stack_resources(StackName=stack)["StackResources"]
        if r.get("LogicalResourceId") and r.get("PhysicalResourceId")
    }


def check_no_collision(world, stack):
    created = physical_names(stack)
    roles = {n.rsplit("/", 1)[-1] for n in created.values()}
    clash = sorted(roles & set(world.console_roles))
    check(not clash, f"no resource of {stack} takes a console role's name {clash or ''}")
    for name, arn in world.console_roles.items():
        untouched = (
            iam.get_role(RoleName=name)["Role"]["Arn"] == arn
            and not iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
            and not iam.list_role_policies(RoleName=name)["PolicyNames"]
        )
        check(untouched, f"console role {name} untouched (no policy attached or put)")


# -- the guide's merge steps -----------------------------------------------------------


def enable_eventbridge(world):
    before = cli_output(s3.get_bucket_notification_configuration(Bucket=world.source))
    merged = json.loads(jq("enable-eventbridge.jq", before))
    check("EventBridgeConfiguration" in merged, "the merged configuration switches EventBridge on")
    s3.put_bucket_notification_configuration(Bucket=world.source, NotificationConfiguration=merged)
    after = s3.get_bucket_notification_configuration(Bucket=world.source)
    check(
        after.get("QueueConfigurations") == world.foreign_notification.get("QueueConfigurations"),
        "the bucket's other notifications (another team's queue, if any) are kept",
    )


def extra_statements(world):
    """The guide's import of the destination's current policy, then its removal so that the
    stack can create its own (AWS::S3::BucketPolicy fails on a bucket that has one)."""
    try:
        policy = s3.get_bucket_policy(Bucket=world.destination)["Policy"]
    except ClientError as e:
        if e.response["Error"]["Code"] != "NoSuchBucketPolicy":
            raise
        policy = ""
    Path(f"/tmp/{world.destination}-policy-before.json").write_text(policy)
    extra = jq("extra-policy-statements.jq", policy, raw=True)
    check(len(extra.encode()) <= 4096, f"the carried statements fit a parameter ({len(extra)} bytes)")
    s3.delete_bucket_policy(Bucket=world.destination)
    return extra


def policy_of(bucket):
    return json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])


def sids(policy):
    return {st.get("Sid") for st in policy["Statement"]}


def statement(policy, sid):
    """The policy's statement with this Sid, or None."""
    return next((st for st in policy["Statement"] if st.get("Sid") == sid), None)


def account_b(world, step1, params, create_stack=True):
    """Step 2 as the guide runs it, then the destination's policy, checked against what step
    1 output. Without `create_stack`, an update of the existing stack: its one resource here
    is the bucket policy, which the emulator's CloudFormation cannot update (it trips over the
    conditional bucket), so the policy is rendered and put as the update would."""
    check_parameters("destination-account.yaml", params)
    if create_stack:
        deploy(f"s3r-b-{world.destination}", "destination-account.yaml", params)
    apply_bucket_policy("destination-account.yaml", params)
    policy = policy_of(world.destination)
    check_destination_policy(world, policy, step1)
    return policy


def refusal(document, merge_args):
    """What add-replication-rule.jq says when it refuses `document` (empty if it does not)."""
    try:
        jq("add-replication-rule.jq", json.dumps(document), *merge_args)
    except RehearsalFailed as e:
        return str(e)
    return ""


def check_destination_policy(world, policy, step1):
    for st in world.foreign_statements:
        check(st in policy["Statement"], f"the earlier statement {st['Sid']} is kept verbatim")
    principals = {st.get("Sid"): st.get("Principal") for st in policy["Statement"]}
    check(
        principals["S3ReconcilerDaemonDeleteVersions"] == {"AWS": step1["DaemonRoleArn"]},
        "the daemon's grant names step 1's DaemonRoleArn",
    )
    datasync = step1.get("DataSyncDestinationRoleArn")
    check(
        principals.get("S3ReconcilerDataSyncWriteObjects") == ({"AWS": datasync} if datasync else None),
        "DataSync's grant names step 1's DataSyncDestinationRoleArn, and is absent without one",
    )


def daemon_actions(stack):
    """Every action the daemon's role is granted (its inline policy, as the stack put it)."""
    role = physical_names(stack)["DaemonRole"]
    actions = set()
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        doc = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        if isinstance(doc, str):
            # The emulator hands back what the stack gave it: JSON, or a Python literal.
            try:
                doc = json.loads(doc)
            except json.JSONDecodeError:
                import ast

                doc = ast.literal_eval(doc)
        # The emulator keeps AWS::NoValue statements as null; CloudFormation drops them.
        for st in filter(None, doc["Statement"]):
            a = st["Action"]
            actions.update([a] if isinstance(a, str) else a)
    return actions


# -- the three paths ------------------------------------------------------------------


def console_task():
    world = World("console")
    task = datasync.describe_task(TaskArn=world.task_arn)
    roles = {
        side: datasync.describe_location_s3(LocationArn=task[f"{side}LocationArn"])["S3Config"][
            "BucketAccessRoleArn"
        ]
        for side in ("Source", "Destination")
    }
    step1 = {
        "SourceBucketName": world.source,
        "DestinationBucketName": world.destination,
        "DestinationAccountId": DESTINATION_ACCOUNT,
        "AccessLogBucketName": world.logs,
        "ExistingDataSyncTaskId": world.task_arn.rsplit("/", 1)[-1],
        "ExistingDataSyncSourceRoleArn": roles["Source"],
        "ExistingDataSyncDestinationRoleArn": roles["Destination"],
    }
    print("==> console-task: step 1, account A (the console task and its roles kept)")
    check_parameters("source-account.yaml", step1)
    out = deploy(f"s3r-a-{world.source}", "source-account.yaml", step1)
    check_no_collision(world, f"s3r-a-{world.source}")
    # The emulator's DataSync answers under an account of its own; the task id is what counts.
    task_id = world.task_arn.rsplit("/", 1)[-1]
    check(
        out.get("DataSyncTaskArn", "").endswith(f":task/{task_id}"),
        "DataSyncTaskArn is the console task",
    )
    check(
        out["DataSyncDestinationRoleArn"] == roles["Destination"],
        "DataSyncDestinationRoleArn is the role the console's destination location uses",
    )
    print("==> console-task: EventBridge on, the bucket's notifications kept")
    enable_eventbridge(world)
    print("==> console-task: step 2, account B (the earlier policy carried over)")
    step2 = {
        "DestinationBucketName": world.destination,
        "DaemonRoleArn": out["DaemonRoleArn"],
        "DataSyncRoleArn": out["DataSyncDestinationRoleArn"],
        "ExtraPolicyStatements": extra_statements(world),
    }
    policy = account_b(world, out, step2)
    check("S3ReconcilerCreateDataSyncLocation" not in sids(policy), "no location creator: no location is created")
    print("==> console-task: a later update names one parameter and keeps the others")
    stack_a = f"s3r-a-{world.source}"
    again = deploy(stack_a, "source-account.yaml", {"UpdateTaskFilter": "true"}, update=True)
    params = {
        p["ParameterKey"]: p["ParameterValue"]
        for p in cfn.describe_stacks(StackName=stack_a)["Stacks"][0]["Parameters"]
    }
    check(
        params["UpdateTaskFilter"] == "true" and params["SourceBucketName"] == world.source,
        "the stack holds the new value and the old ones",
    )
    check(again == out, "every output is as before: no parameter fell back to its default")
    rule = events.describe_rule(Name=physical_names(stack_a)["DeleteEventsRule"])
    check(
        json.loads(rule["EventPattern"])["detail"]["bucket"]["name"] == [world.source],
        "the EventBridge rule still matches the source bucket",
    )


def new_task():
    world = World("new", bare=True)
    step1 = {
        "SourceBucketName": world.source,
        "DestinationBucketName": world.destination,
        "DestinationAccountId": DESTINATION_ACCOUNT,
        "AccessLogBucketName": world.logs,
        "CreateDataSyncTask": "false",
    }
    print("==> new-task: step 1, account A (the stack's own DataSync roles, no task yet)")
    check_parameters("source-account.yaml", step1)
    stack_a = f"s3r-a-{world.source}"
    out = deploy(stack_a, "source-account.yaml", step1)
    check_no_collision(world, stack_a)
    check("DataSyncTaskArn" not in out, "no task ARN is output before the task exists")
    check(
        not {"s3:GetReplicationConfiguration", "s3:GetObjectVersion"} & daemon_actions(stack_a),
        "without replication the daemon gets none of mirror-versions' reads",
    )
    check(
        out["DataSyncDestinationRoleArn"] not in world.console_roles.values(),
        "the destination role is the stack's own",
    )
    print("==> new-task: EventBridge on, the bucket's notifications kept")
    enable_eventbridge(world)
    print("==> new-task: step 2, account B (the location creator may list the bucket)")
    deployer = "arn:aws:iam::111111111111:role/deployer"
    step2 = {
        "DestinationBucketName": world.destination,
        "DaemonRoleArn": out["DaemonRoleArn"],
        "DataSyncRoleArn": out["DataSyncDestinationRoleArn"],
        "LocationCreatorArn": deployer,
        "ExtraPolicyStatements": extra_statements(world),
    }
    policy = account_b(world, out, step2)
    creator = statement(policy, "S3ReconcilerCreateDataSyncLocation")
    check(creator and creator["Principal"] == {"AWS": deployer}, "the location creator may list the bucket")
    # Step 3 (CreateDataSyncTask=true) creates DataSync resources, which the emulator's
    # CloudFormation cannot: its parameters are checked, then the statement is removed.
    print("==> new-task: step 3's parameters, then the location creator's statement removed")
    check_parameters("source-account.yaml", {**step1, "CreateDataSyncTask": "true"})
    # Every other parameter at its previous value, as `deploy` keeps them.
    policy = account_b(world, out, {**step2, "LocationCreatorArn": ""}, create_stack=False)
    check("S3ReconcilerCreateDataSyncLocation" not in sids(policy), "the location creator's statement is gone")


def replication():
    world = World("replication")
    step1 = {
        "SourceBucketName": world.source,
        "DestinationBucketName": world.destination,
        "DestinationAccountId": DESTINATION_ACCOUNT,
        "AccessLogBucketName": world.logs,
        "ReplicationPrefix": "topics/",
    }
    print("==> replication: step 1, account A (the replication role; no rule yet)")
    check_parameters("source-account.yaml", step1)
    out = deploy(f"s3r-a-{world.source}", "source-account.yaml", step1)
    check_no_collision(world, f"s3r-a-{world.source}")
    check("DataSyncDestinationRoleArn" not in out, "a replicating stack makes no DataSync roles")
    granted = daemon_actions(f"s3r-a-{world.source}")
    mirror = {"s3:GetReplicationConfiguration", "s3:GetLifecycleConfiguration", "s3:GetObjectVersion"}
    check(mirror <= granted, "the daemon may read what mirror-versions checks and proves")
    rule = json.loads(out["ReplicationRule"])
    check(rule["Filter"] == {"Prefix": "topics/"}, "the output rule covers ReplicationPrefix")
    print("==> replication: step 2, account B (the replication role admitted)")
    step2 = {
        "DestinationBucketName": world.destination,
        "DaemonRoleArn": out["DaemonRoleArn"],
        "ReplicationRoleArn": out["ReplicationRoleArn"],
        "ExtraPolicyStatements": extra_statements(world),
    }
    policy = account_b(world, out, step2)
    writes = statement(policy, "S3ReconcilerReplicationWriteObjects")
    check(
        writes and writes["Principal"] == {"AWS": out["ReplicationRoleArn"]},
        "the replication role may replicate into the destination",
    )
    check(
        "s3:ObjectOwnerOverrideToBucketOwner" not in writes["Action"],
        "no owner override on a BucketOwnerEnforced destination",
    )
    proves = statement(policy, "S3ReconcilerDaemonProvesReplicas")
    check(
        proves and proves["Action"] == "s3:GetObjectVersion",
        "the destination lets the daemon read a version's replication status",
    )
    print("==> replication: step 3, the rule merged into the source's replication configuration")
    merge_args = ("--argjson", "rule", out["ReplicationRule"], "--arg", "role", out["ReplicationRoleArn"])
    merged = json.loads(jq("add-replication-rule.jq", "", *merge_args))
    s3.put_bucket_replication(Bucket=world.source, ReplicationConfiguration=merged)
    live = s3.get_bucket_replication(Bucket=world.source)["ReplicationConfiguration"]
    check(live["Role"] == out["ReplicationRoleArn"], "the configuration's role is step 1's")
    check([r["ID"] for r in live["Rules"]] == ["s3-reconciler-mirror"], "the rule is in place")
    # A bucket replicating elsewhere with a role of its own is refused, not rewired.
    foreign = {
        "ReplicationConfiguration": {
            "Role": "arn:aws:iam::111111111111:role/backup-replication",
            "Rules": [{"ID": "backup", "Priority": 1, "Status": "Enabled"}],
        }
    }
    check("already replicates with role" in refusal(foreign, merge_args), "a configuration with another role is refused")
    first_schema = {
        "ReplicationConfiguration": {
            "Role": out["ReplicationRoleArn"],
            "Rules": [{"ID": "old", "Prefix": "logs/", "Status": "Enabled", "Destination": {"Bucket": "arn:aws:s3:::b"}}],
        }
    }
    check("first schema version" in refusal(first_schema, merge_args), "rules of the first schema version are refused, not mixed")
    again = json.loads(jq("add-replication-rule.jq", cli_output({"ReplicationConfiguration": live}), *merge_args))
    check(len(again["Rules"]) == 1, "merging twice keeps one rule")


def main():
    for path in (console_task, new_task, replication):
        try:
            path()
        except (RehearsalFailed, ClientError) as e:
            print(f"FAILED ({path.__name__}): {e}", file=sys.stderr)
            return 1
    print("==> the deployment rehearsal passed: console-task, new-task, replication")
    return 0


if __name__ == "__main__":
    sys.exit(main())
