"""The only code that touches DynamoDB, S3, SQS, Secrets Manager and EventBridge."""
