"""CloudWatch as AWS runs it: the minute that publishes SQS's metrics and evaluates alarms (minute), alarm
evaluation (alarms), statistics and percentiles (statistics), SQS's message counters (queue_metrics)."""
