# The source bucket's replication configuration with s3-reconciler's rule added (or replaced)
# and every other rule kept: S3 replaces the whole configuration on every put. Input:
# `aws s3api get-bucket-replication`, read with `jq --slurp` (empty when the bucket has none);
# --argjson rule: source-account.yaml's ReplicationRule output; --arg role: its
# ReplicationRoleArn output. One configuration has one role, so a bucket that already
# replicates with another role is refused rather than moved to ours.
(.[0].ReplicationConfiguration // {Role: $role, Rules: []})
| if .Role != $role then
    error("the bucket already replicates with role \(.Role); a replication configuration has one role: grant that role the destination bucket (and use it in destination-account.yaml's ReplicationRoleArn), or move its rules to \($role)")
  else . end
| .Rules |= map(select(.ID != $rule.ID))
| .Rules += [$rule + {Priority: (([.Rules[].Priority // 0] | max // 0) + 1)}]
