#!/usr/bin/env python3
"""The production example configuration, once, for every platform.

PRODUCTION below is the one source. This script writes it out three ways:
  config/example-production.toml          the example as a file (any host: --config FILE)
  deploy/kubernetes/config.toml           the Kubernetes ConfigMap's file (kustomization.yaml)
  deploy/cloudformation/ecs-service.yaml  the daemon container's Environment: one
                                          S3R__SECTION__KEY variable per key (Fargate mounts no
                                          file), values from the stack's parameters where
                                          ECS_FROM_PARAMETERS says so
The platforms' differences are spelled out here and nowhere else: a key's `only` (the
platforms that write it), each platform's header, ECS_FROM_PARAMETERS, ECS_CONDITIONAL and
ECS_EXTRA.

  scripts/examples.py                       rewrite the three
  scripts/examples.py --check               exit 1 when any differs from what it would write
  scripts/examples.py --check-config BINARY run `BINARY check-config` on each: the two files
                                            (--config FILE), and the ECS environment (no file)
                                            for several parameter choices, CloudFormation's
                                            Ref/If resolved with the example's own values as
                                            the parameters; the configurations the files and
                                            the ECS environment produce must then be equal
Run with the tools' Python (.venv-tools/bin/python: cfn-lint's template loader).
"""

import json
import os
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import cfn_template

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config/example-production.toml"
KUBERNETES = ROOT / "deploy/kubernetes/config.toml"
ECS = ROOT / "deploy/cloudformation/ecs-service.yaml"
DEPLOYMENT = ROOT / "deploy/kubernetes/deployment.yaml"

ALL = frozenset({"example", "kubernetes", "ecs"})


@dataclass
class Key:
    name: str
    value: object
    comment: str = ""
    only: frozenset = ALL


@dataclass
class Section:
    name: str
    keys: list
    comment: str = ""
    # Comment lines only some platforms print (e.g. how to assume a role in the other account).
    notes: dict = field(default_factory=dict)


# -- The one production example ------------------------------------------------------------

PRODUCTION = [
    Section("source", [
        Key("bucket", "source-s3-bucket"),
        Key("region", "ap-northeast-2"),
    ]),
    Section("target", [
        Key("bucket", "destination-s3-bucket"),
        Key("region", "ap-northeast-2"),
    ], notes={"example": (
        "If the destination account prefers a role of its own to a bucket policy, assume it here:\n"
        'role_arn = "arn:aws:iam::222222222222:role/s3-reconciler-target"\n'
        'external_id = "set-through-S3R__TARGET__EXTERNAL_ID"'
    )}),
    Section("http", [
        Key("listen", "0.0.0.0:9090",
            "Port 9090: the probes and the Service (Kubernetes), the port mapping and the metrics "
            "collector (ECS) use it.",
            only=frozenset({"kubernetes", "ecs"})),
    ]),
    Section("log", [
        Key("format", "json"),
        Key("level", "info"),
    ]),
    Section("shutdown", [
        Key("grace", "25s",
            "Shorter than the container's stop timeout (terminationGracePeriodSeconds, ECS "
            "StopTimeout: 40s)."),
    ]),
    Section("preflight", [
        Key("enabled", True),
        Key("interval", "1h"),
    ], comment="The doctor's checks at start-up and hourly: a failing one makes its task not ready."),
    Section("sync", [
        Key("enabled", True),
        Key("task_arn", "arn:aws:datasync:ap-northeast-2:111111111111:task/task-0123456789abcdef0"),
        Key("schedule", "0 30 1 * * *", "01:30 in Seoul, after the writer closed D-1's partitions."),
        Key("timezone", "Asia/Seoul"),
        Key("lag_days", 1),
        Key("lookback_days", 1),
        Key("prefix", "topics/"),
        Key("partition", "year={yyyy}/month={MM}/day={dd}/"),
        Key("filter_mode", "execution"),
        Key("poll_interval", "30s"),
        Key("timeout", "6h"),
        Key("claim_ttl", "10m"),
        Key("max_attempts", 3),
        Key("retry_interval", "15m"),
    ]),
    Section("state", [
        Key("bucket", "s3-reconciler-state-111111111111",
            "source-account.yaml's StateBucketName output (a generated name)."),
        Key("prefix", "s3-reconciler/state/"),
    ]),
    Section("purge", [
        Key("enabled", True),
        Key("queue_url",
            "https://sqs.ap-northeast-2.amazonaws.com/111111111111/s3-reconciler-permanent-deletes",
            "source-account.yaml's QueueUrl output (a generated name)."),
        Key("concurrency", 16),
        Key("visibility_timeout", "60s"),
        Key("mode", "when-source-empty"),
    ]),
    Section("sweep", [
        Key("enabled", True),
        Key("prefixes", ["topics/"]),
        Key("action", "report",
            'Start with "report"; switch to "purge" once a few reports look right.'),
        Key("max_deletes", 1000),
    ], comment="Repairs what the delete events missed."),
]

# -- The platforms ----------------------------------------------------------------------------

GENERATED = ("Generated by scripts/examples.py from the one production example it holds "
             "(PRODUCTION), which it also writes as config/example-production.toml, "
             "deploy/kubernetes/config.toml and the ECS task definition's Environment: edit it "
             "there, then run the script.")

HEADERS = {
    "example": (
        "A production configuration: the daemon runs in the source account (111111111111) and "
        "keeps the destination bucket, in account 222222222222, in step; region ap-northeast-2. "
        "It runs with an IAM role (IRSA on EKS, a task role on ECS); the destination account's "
        "bucket policy grants that role what it needs on destination-s3-bucket "
        "(deploy/cloudformation/destination-account.yaml). Every key and its default: "
        "config/default.toml.\n" + GENERATED
    ),
    "kubernetes": (
        "The daemon's configuration, mounted at /etc/s3-reconciler/config.toml. "
        "kustomization.yaml turns it into a ConfigMap whose name carries a hash of this file, so "
        "a change here rolls the pods. Credentials come from IRSA (serviceaccount.yaml); secrets "
        "such as an external id go into environment variables from a Secret "
        "(S3R__TARGET__EXTERNAL_ID). Every key and its default: config/default.toml.\n" + GENERATED
    ),
}

# ECS: a key's value from the stack instead of the example (a CloudFormation value, as YAML;
# {value} stands for the example's).
ECS_FROM_PARAMETERS = {
    ("source", "bucket"): "!Ref SourceBucketName",
    ("source", "region"): "!Ref AWS::Region",
    ("target", "bucket"): "!Ref DestinationBucketName",
    ("target", "region"): "!Ref AWS::Region",
    ("sync", "enabled"): '!If [Syncs, "true", "false"]',
    ("state", "bucket"): "!Ref StateBucketName",
    ("state", "prefix"): "!Ref StatePrefix",
    ("purge", "queue_url"): "!Ref QueueUrl",
    ("purge", "mode"): "!Ref PurgeMode",
    # The sweep walks what the purge covers: with PurgePrefixes (required by mirror-versions,
    # where a sweep outside what replication covers is refused), those prefixes.
    ("sweep", "prefixes"): "!If [HasPurgePrefixes, !Ref PurgePrefixes, {value}]",
}
# ECS: a key set only under a condition of the stack (else the default).
ECS_CONDITIONAL = {
    ("sync", "task_arn"): ("Syncs", "!Ref DataSyncTaskArn"),
}
# ECS: variables the example has no key for. (name, value, condition or None); before the
# keys when first is True.
ECS_EXTRA = [
    # The SDK's region for the calls no section configures (STS).
    ("AWS_REGION", "!Ref AWS::Region", None, True),
    # purge.prefixes, comma-separated: what S3 Replication covers with mirror-versions.
    ("S3R__PURGE__PREFIXES", "!Ref PurgePrefixes", "HasPurgePrefixes", False),
]
# The example's value of each parameter ECS_FROM_PARAMETERS names, for --check-config (so the
# ECS environment must come out as the files do). Others keep the template's Default.
PARAMETER_KEYS = {
    "SourceBucketName": ("source", "bucket"),
    "DestinationBucketName": ("target", "bucket"),
    "AWS::Region": ("source", "region"),
    "StateBucketName": ("state", "bucket"),
    "StatePrefix": ("state", "prefix"),
    "QueueUrl": ("purge", "queue_url"),
    "PurgeMode": ("purge", "mode"),
    "DataSyncTaskArn": ("sync", "task_arn"),
}
# Further parameter choices check-config must accept: (what, overrides).
ECS_VARIANTS = [
    ("no DataSync task (sync disabled)", {"DataSyncTaskArn": ""}),
    ("mirror-versions, no DataSync task",
     {"DataSyncTaskArn": "", "PurgeMode": "mirror-versions", "PurgePrefixes": "replicated/"}),
]


# -- Rendering ------------------------------------------------------------------------------


def wrap(text, prefix, width=96):
    """`text` as comment lines of at most `width` characters (hard breaks kept)."""
    out = []
    for para in text.split("\n"):
        line = prefix
        for word in para.split(" "):
            if len(line) + len(word) + 1 > width and line != prefix:
                out.append(line.rstrip())
                line = prefix
            line += word + " "
        out.append(line.rstrip())
    return out


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(v)


def render_toml(platform):
    lines = wrap(HEADERS[platform], "# ")
    for section in PRODUCTION:
        keys = [k for k in section.keys if platform in k.only]
        if not keys:
            continue
        lines += ["", f"[{section.name}]"]
        if section.comment:
            lines += wrap(section.comment, "# ")
        for key in keys:
            if key.comment:
                lines += wrap(key.comment, "# ")
            lines.append(f"{key.name} = {toml_value(key.value)}")
        if platform in section.notes:
            lines += ["# " + l if l else "#" for l in section.notes[platform].split("\n")]
    return "\n".join(lines) + "\n"


def env_value(v):
    """A literal value as an S3R__ variable's text (lists comma-separated while they can be)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list):
        if v and all(x and "," not in x for x in v):
            return ",".join(v)
        return json.dumps(v)  # needs the JSON-array form of list variables
    return v


def env_entry(name, value):
    if not value.startswith("!"):
        value = json.dumps(value)
    return f"- {{Name: {name}, Value: {value}}}"


def conditional(condition, name, value):
    return ["- !If", f"  - {condition}", f"  {env_entry(name, value)}", "  - !Ref AWS::NoValue"]


def render_ecs_environment():
    """The daemon container's Environment list, as lines relative to its indentation."""
    lines = ["# " + l for l in wrap(GENERATED, "")]
    for name, value, cond, first in ECS_EXTRA:
        if first:
            lines += conditional(cond, name, value) if cond else [env_entry(name, value)]
    for section in PRODUCTION:
        keys = [k for k in section.keys if "ecs" in k.only]
        if keys:
            lines.append(f"# [{section.name}]")
            if section.comment:
                lines += wrap(section.comment, "# ")
        for key in keys:
            at = (section.name, key.name)
            name = f"S3R__{section.name.upper()}__{key.name.upper()}"
            if key.comment and at not in ECS_FROM_PARAMETERS:
                lines += wrap(key.comment, "# ")
            if at in ECS_CONDITIONAL:
                cond, value = ECS_CONDITIONAL[at]
                lines += conditional(cond, name, value)
            else:
                literal = env_value(key.value)
                if at in ECS_FROM_PARAMETERS:
                    lines.append(env_entry(name, ECS_FROM_PARAMETERS[at].replace(
                        "{value}", json.dumps(literal))))
                else:
                    lines.append(env_entry(name, literal))
        for name, value, cond, first in ECS_EXTRA:
            if not first and name.startswith(f"S3R__{section.name.upper()}__"):
                lines += conditional(cond, name, value) if cond else [env_entry(name, value)]
    return lines


def ecs_with(environment):
    """ecs-service.yaml with the s3-reconciler container's Environment list replaced."""
    lines = ECS.read_text().splitlines(keepends=True)
    container = next(i for i, l in enumerate(lines) if l.strip() == "- Name: s3-reconciler")
    at = next(i for i in range(container, len(lines)) if lines[i].strip() == "Environment:")
    indent = len(lines[at]) - len(lines[at].lstrip())
    end = at + 1
    while end < len(lines) and (
        not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > indent
    ):
        end += 1
    block = "".join(" " * (indent + 2) + l + "\n" for l in environment)
    return "".join(lines[: at + 1]) + block + "".join(lines[end:])


def outputs():
    return {
        EXAMPLE: render_toml("example"),
        KUBERNETES: render_toml("kubernetes"),
        ECS: ecs_with(render_ecs_environment()),
    }


def consistency():
    """Every key the ECS tables name exists in PRODUCTION (a renamed key must not slip by)."""
    known = {(s.name, k.name) for s in PRODUCTION for k in s.keys if "ecs" in k.only}
    wrong = [f"{s}.{k}" for s, k in [*ECS_FROM_PARAMETERS, *ECS_CONDITIONAL, *PARAMETER_KEYS.values()]
             if (s, k) not in known]
    if wrong:
        sys.exit(f"scripts/examples.py: the ECS tables name keys PRODUCTION has not: {wrong}")


# -- check-config ------------------------------------------------------------------------------


def example_value(section, key):
    return next(k.value for s in PRODUCTION if s.name == section for k in s.keys if k.name == key)


def ecs_environment(template, parameters):
    """The s3-reconciler container's Environment as the ECS task gets it for `parameters`."""
    stack = cfn_template.Template(template, parameters)
    containers = stack.doc["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"]
    for c in containers:
        if c["Name"] == "s3-reconciler":
            return {v["Name"]: str(v["Value"]) for v in stack.value(c["Environment"])}
    raise ValueError("no s3-reconciler container")


def run_check_config(binary, args, env, what):
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    r = subprocess.run([binary, *args, "check-config"], env={**base, **env},
                       capture_output=True, text=True)
    if r.returncode != 0:
        print(f"FAIL {what}: check-config exited {r.returncode}\n{r.stdout}{r.stderr}")
        return None
    print(f"ok   {what}")
    return tomllib.loads(r.stdout)


def deployment_env():
    """The Kubernetes container's literal environment, S3R_CONFIG left out (--config here)."""
    import yaml

    doc = yaml.safe_load(DEPLOYMENT.read_text())
    (c,) = [c for c in doc["spec"]["template"]["spec"]["containers"] if c["name"] == "s3-reconciler"]
    return {e["name"]: e["value"] for e in c.get("env", []) if "value" in e and e["name"] != "S3R_CONFIG"}


def check_config(binary):
    binary = str(Path(binary).resolve())
    results, failed = {}, False
    for path, env, what in [
        (EXAMPLE, {}, "config/example-production.toml"),
        (KUBERNETES, deployment_env(), "deploy/kubernetes/config.toml (with the Deployment's env)"),
    ]:
        got = run_check_config(binary, ["--config", str(path)], env, what)
        failed |= got is None
        results[what] = got
    template = cfn_template.load(ECS)
    example = {p: example_value(*k) for p, k in PARAMETER_KEYS.items()}
    variants = [("the example's values", {})] + ECS_VARIANTS
    for i, (name, overrides) in enumerate(variants):
        env = ecs_environment(template, {**example, **overrides})
        # No configuration file: the built-in defaults under the variables.
        got = run_check_config(binary, [], env,
                               f"ECS task definition's Environment, {name} ({len(env)} variables)")
        failed |= got is None
        if i == 0:
            results["ecs"] = got
    if not failed:
        # The same example, however it is given, must be the same configuration.
        items = list(results.items())
        for what, cfg in items[1:]:
            if cfg != items[0][1]:
                a, b = flat(items[0][1]), flat(cfg)
                diff = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
                print(f"FAIL {what} is not the configuration {items[0][0]} is: "
                      + ", ".join(f"{k}: {a.get(k)!r} vs {b.get(k)!r}" for k in diff))
                failed = True
        if not failed:
            print("ok   the three give one configuration")
    return 1 if failed else 0


def flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def main():
    consistency()
    args = sys.argv[1:]
    if args[:1] == ["--check-config"]:
        if len(args) != 2:
            sys.exit("usage: scripts/examples.py --check-config BINARY")
        return check_config(args[1])
    want = outputs()
    if "--check" in args:
        stale = [p for p, text in want.items() if not p.exists() or p.read_text() != text]
        for p in stale:
            print(f"{p.relative_to(ROOT)}: differs from scripts/examples.py's PRODUCTION; run scripts/examples.py")
        return 1 if stale else 0
    for p, text in want.items():
        p.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
