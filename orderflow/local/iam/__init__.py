"""Who may do what on the embedded AWS: role sessions held to their policies (enforcement, roles), Lambda's rules
for event source mappings (mapping_rules), and the pollers' in-process SQS client that checks the role
(queue_access)."""
