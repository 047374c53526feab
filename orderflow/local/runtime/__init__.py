"""orderflow's docker-less Lambda runtime: SQS pollers that invoke deployed zips in warm Python processes."""
