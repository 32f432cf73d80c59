# The source bucket's replication configuration with s3-reconciler's rule added (or replaced)
# and every other rule kept: S3 replaces the whole configuration on every put. Input:
# `aws s3api get-bucket-replication`, read with `jq --slurp` (empty when the bucket has none);
# --argjson rule: source-account.yaml's ReplicationRule output; --arg role: its
# ReplicationRoleArn output. One configuration has one role, so a bucket that already
# replicates with another role is refused rather than moved to ours; so are rules of the
# first schema version, which S3 does not mix with ours.
(.[0].ReplicationConfiguration // {Role: $role, Rules: []})
| if .Role != $role then
    error("the bucket already replicates with role \(.Role); a replication configuration has one role: grant that role the destination bucket (and use it in destination-account.yaml's ReplicationRoleArn), or move its rules to \($role)")
  else . end
| if any(.Rules[]; has("Filter") | not) then
    error("the bucket has replication rules of the first schema version (a Prefix without Filter), which cannot share a configuration with a Filter rule: rewrite them with Filter, Priority and DeleteMarkerReplication first")
  else . end
| .Rules |= map(select(.ID != $rule.ID))
| .Rules += [$rule + {Priority: (([.Rules[].Priority // 0] | max // 0) + 1)}]
