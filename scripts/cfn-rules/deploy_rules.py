"""s3-reconciler's own cfn-lint rules: documented AWS constraints the deployment rehearsal
cannot run on the emulator (`cfn-lint --append-rules scripts/cfn-rules`). Each rule has a
fixture in tests/cfn-fixtures/ that it must fail (scripts/validate-deploy.sh checks)."""

import re

from cfnlint.rules import CloudFormationLintRule, RuleMatch

# The longest values a parameter can take when nothing in the template bounds it: S3 bucket
# names are at most 63 characters; pseudo parameters have fixed maxima.
LONGEST_BUCKET_NAME = 63
PSEUDO_MAX = {
    "AWS::AccountId": 12,
    "AWS::Partition": 10,
    "AWS::Region": 14,
    "AWS::StackName": 128,
    "AWS::URLSuffix": 13,
}
IAM_ROLE_NAME_MAX = 64


def _resources(cfn, resource_type):
    for name, res in (cfn.template.get("Resources") or {}).items():
        if isinstance(res, dict) and res.get("Type") == resource_type:
            yield name, res


def _conditions(cfn):
    return cfn.template.get("Conditions") or {}


def _refs_in(value):
    """Every parameter or resource a value names through Ref, GetAtt or ${} in Sub."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "Ref" and isinstance(v, str):
                yield v
            elif k == "Fn::GetAtt":
                yield v[0] if isinstance(v, list) else str(v).split(".")[0]
            elif k == "Fn::Sub":
                text = v[0] if isinstance(v, list) else v
                if isinstance(text, str):
                    for m in re.finditer(r"\$\{([^}!]+)\}", text):
                        yield m.group(1).split(".")[0]
                if isinstance(v, list) and len(v) > 1:
                    yield from _refs_in(v[1])
            elif k == "Condition" and isinstance(v, str):
                yield from ()
            else:
                yield from _refs_in(v)
    elif isinstance(value, list):
        for v in value:
            yield from _refs_in(v)


def _condition_implies(cfn, name, test, seen=None):
    """Whether condition `name` being true implies `test(expr)` of one of its conjuncts."""
    seen = seen or set()
    if name in seen:
        return False
    seen.add(name)
    expr = _conditions(cfn).get(name)
    return _expr_implies(cfn, expr, test, seen)


def _expr_implies(cfn, expr, test, seen):
    if test(expr):
        return True
    if isinstance(expr, dict):
        if "Condition" in expr:
            return _condition_implies(cfn, expr["Condition"], test, seen)
        if "Fn::And" in expr:
            return any(_expr_implies(cfn, e, test, seen) for e in expr["Fn::And"])
    return False


class EnhancedTaskLogsToAwsDatasync(CloudFormationLintRule):
    """An Enhanced-mode task logs to /aws/datasync (created by DataSync's service-linked role):
    CreateTask's CloudWatchLogGroupArn is for BASIC mode only."""

    id = "E9101"
    shortdesc = "Enhanced DataSync task with a log group of its own"
    description = (
        "A DataSync task in ENHANCED mode must not set CloudWatchLogGroupArn; set it only "
        "under a condition that TaskMode is BASIC"
    )
    source_url = "https://docs.aws.amazon.com/datasync/latest/userguide/API_CreateTask.html"
    tags = ["s3-reconciler", "datasync"]

    def match(self, cfn):
        matches = []
        for name, res in _resources(cfn, "AWS::DataSync::Task"):
            props = res.get("Properties") or {}
            mode = props.get("TaskMode", "BASIC")
            group = props.get("CloudWatchLogGroupArn")
            if group is None or mode == "BASIC":
                continue
            path = ["Resources", name, "Properties", "CloudWatchLogGroupArn"]
            param = mode.get("Ref") if isinstance(mode, dict) else None

            def is_basic(expr, param=param):
                return (
                    isinstance(expr, dict)
                    and isinstance(expr.get("Fn::Equals"), list)
                    and param is not None
                    and {"Ref": param} in expr["Fn::Equals"]
                    and "BASIC" in expr["Fn::Equals"]
                )

            guarded = (
                isinstance(group, dict)
                and isinstance(group.get("Fn::If"), list)
                and len(group["Fn::If"]) == 3
                and group["Fn::If"][2] == {"Ref": "AWS::NoValue"}
                and _condition_implies(cfn, group["Fn::If"][0], is_basic)
            )
            if not guarded:
                matches.append(
                    RuleMatch(
                        path,
                        f"{name}: TaskMode may be ENHANCED, and an Enhanced task logs to "
                        "/aws/datasync; set CloudWatchLogGroupArn only under a condition "
                        "that TaskMode is BASIC (Fn::If [BasicCondition, arn, AWS::NoValue])",
                    )
                )
        return matches


class NoFixedRoleNames(CloudFormationLintRule):
    """Fixed role names collide with console-made ones and, built from bucket names, can
    exceed IAM's 64 characters."""

    id = "E9102"
    shortdesc = "IAM role with a fixed or possibly over-long name"
    description = (
        "AWS::IAM::Role must leave RoleName to CloudFormation: a literal or a name composed "
        "from parameters collides with roles of that name, and may exceed 64 characters"
    )
    source_url = "https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html"
    tags = ["s3-reconciler", "iam"]

    def _longest(self, cfn, ref):
        if ref in PSEUDO_MAX:
            return PSEUDO_MAX[ref]
        param = (cfn.template.get("Parameters") or {}).get(ref)
        if param is None:
            return None
        if "MaxLength" in param:
            return int(param["MaxLength"])
        if param.get("AllowedValues"):
            return max(len(str(v)) for v in param["AllowedValues"])
        if ref.lower().endswith("bucketname"):
            return LONGEST_BUCKET_NAME
        return None

    def match(self, cfn):
        matches = []
        for name, res in _resources(cfn, "AWS::IAM::Role"):
            role_name = (res.get("Properties") or {}).get("RoleName")
            if role_name is None:
                continue
            path = ["Resources", name, "Properties", "RoleName"]
            if isinstance(role_name, str):
                matches.append(
                    RuleMatch(
                        path,
                        f"{name}: fixed RoleName `{role_name}` collides with a role of the same "
                        "name (the console's, another stack's); leave RoleName out",
                    )
                )
                continue
            # A composed name is fixed too (the same in every stack with the same values),
            # and may be too long: say which, so the fix is plain.
            sub = role_name.get("Fn::Sub") if isinstance(role_name, dict) else None
            text = sub[0] if isinstance(sub, list) else sub
            if not isinstance(text, str):
                matches.append(RuleMatch(path, f"{name}: RoleName is fixed per stack; leave it out"))
                continue
            length, unknown = len(re.sub(r"\$\{[^}]+\}", "", text)), []
            for ref in re.findall(r"\$\{([^}!]+)\}", text):
                longest = self._longest(cfn, ref)
                if longest is None:
                    unknown.append(ref)
                else:
                    length += longest
            if unknown:
                why = f"unbounded parameters {unknown}"
            elif length > IAM_ROLE_NAME_MAX:
                why = f"up to {length} characters, over IAM's {IAM_ROLE_NAME_MAX}"
            else:
                why = f"up to {length} characters"
            matches.append(
                RuleMatch(
                    path,
                    f"{name}: RoleName `{text}` is fixed for given parameters ({why}) and can "
                    "collide with a role of that name (the console's); leave RoleName out",
                )
            )
        return matches


class NoNotificationOnImportedBucket(CloudFormationLintRule):
    """An existing bucket adopted by the stack (named by a parameter, DeletionPolicy set, as
    resource import requires) gets none of its template properties on import, and a later
    update's notification replaces the bucket's other notifications."""

    id = "E9103"
    shortdesc = "Notification declared on an imported bucket"
    description = (
        "An AWS::S3::Bucket named by a parameter with a DeletionPolicy (an imported, existing "
        "bucket) must not declare NotificationConfiguration; deliver events through EventBridge"
    )
    source_url = "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/resource-import.html"
    tags = ["s3-reconciler", "s3"]

    def match(self, cfn):
        matches = []
        params = cfn.template.get("Parameters") or {}
        for name, res in _resources(cfn, "AWS::S3::Bucket"):
            props = res.get("Properties") or {}
            bucket_name = props.get("BucketName")
            # A bucket the stack may create is conditional on that; one it always declares
            # under a given name with a DeletionPolicy is an existing bucket brought in.
            existing = (
                "DeletionPolicy" in res
                and "Condition" not in res
                and isinstance(bucket_name, dict)
                and bucket_name.get("Ref") in params
            )
            if existing and "NotificationConfiguration" in props:
                matches.append(
                    RuleMatch(
                        ["Resources", name, "Properties", "NotificationConfiguration"],
                        f"{name} is an existing bucket (named by parameter "
                        f"{bucket_name['Ref']}, DeletionPolicy set): an import applies no "
                        "NotificationConfiguration, and an update replaces the bucket's other "
                        "notifications; route its events through EventBridge",
                    )
                )
        return matches


class ReplicationAfterDestinationPolicy(CloudFormationLintRule):
    """A replication rule enabled before the destination's bucket policy admits the role fails
    the objects written in between, and replication is not retroactive."""

    id = "E9104"
    shortdesc = "Replication rule not gated on the destination policy step"
    description = (
        "A ReplicationConfiguration whose role this template creates must be under a condition "
        "on the parameter DestinationPolicyAdmitsReplicationRole (true once the destination's "
        "bucket policy names the role)"
    )
    source_url = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-walkthrough-2.html"
    tags = ["s3-reconciler", "s3"]
    GATE = "DestinationPolicyAdmitsReplicationRole"

    def _gated(self, cfn, condition):
        def gate_is_true(expr):
            args = expr.get("Fn::Equals") if isinstance(expr, dict) else None
            return (
                isinstance(args, list)
                and {"Ref": self.GATE} in args
                and any(a in ("true", True) for a in args)
            )

        return condition is not None and _condition_implies(cfn, condition, gate_is_true)

    def match(self, cfn):
        matches = []
        roles = {n for n, _ in _resources(cfn, "AWS::IAM::Role")}
        for name, res in _resources(cfn, "AWS::S3::Bucket"):
            config = (res.get("Properties") or {}).get("ReplicationConfiguration")
            if config is None or not roles & set(_refs_in(config)):
                continue
            wrapped = (
                config.get("Fn::If") if isinstance(config, dict) else None
            )
            condition = wrapped[0] if isinstance(wrapped, list) else res.get("Condition")
            if not self._gated(cfn, condition):
                matches.append(
                    RuleMatch(
                        ["Resources", name, "Properties", "ReplicationConfiguration"],
                        f"{name}: the replication rule uses a role this template creates, so "
                        "the destination's bucket policy cannot admit it yet; enable the rule "
                        f"only under a condition on {self.GATE}",
                    )
                )
        return matches
