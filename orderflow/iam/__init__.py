"""IAM as AWS decides it, pure: condition operators, policy documents and their checks, and the evaluator."""
