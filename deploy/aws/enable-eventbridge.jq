# The source bucket's notification configuration with EventBridge delivery switched on and
# every other configuration (queues, topics, Lambdas) kept: S3 replaces the whole
# configuration on every put. Input: `aws s3api get-bucket-notification-configuration`, read
# with `jq --slurp` because S3 answers nothing at all when the bucket has no configuration.
(.[0] // {})
| del(.ResponseMetadata)
| . + {EventBridgeConfiguration: {}}
