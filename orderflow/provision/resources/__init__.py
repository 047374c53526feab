"""One module per AWS resource of the stack: each reads its resource and plans, as typed operations, what creating
it, converging it and deleting it takes (every boto3 call for a resource lives in its module)."""
