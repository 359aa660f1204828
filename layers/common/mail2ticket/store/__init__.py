"""The only code that touches DynamoDB, S3, SQS, Secrets Manager and EventBridge.

Every DynamoDB request made from here on, by boto3 or pynamodb, is first checked against DynamoDB's limits.
"""

from mail2ticket.store.limits import install

install()
