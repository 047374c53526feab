"""Using a stack that exists: publish orders, verify every hop, read logs, handle dead letters."""
