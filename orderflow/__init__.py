"""orderflow: stand up, prove and tear down an SNS -> SQS -> Lambda -> DynamoDB order pipeline."""

__version__ = "0.1.0"
