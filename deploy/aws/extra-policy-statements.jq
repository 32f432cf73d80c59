# The destination bucket policy's statements that are not s3-reconciler's, as compact JSON
# objects joined by commas: destination-account.yaml's ExtraPolicyStatements, so the stack,
# which owns the whole policy, keeps them. Input: `aws s3api get-bucket-policy --query Policy
# --output text`, read with `jq --slurp --raw-output` (empty when the bucket has no policy).
# s3-reconciler's own statements (Sid "S3Reconciler...") are left out: the stack writes them.
(.[0].Statement // [])
| if type == "object" then [.] else . end
| map(select((.Sid // "") | startswith("S3Reconciler") | not))
| map(tojson)
| join(",")
