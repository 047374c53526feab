"""The Lambda handler's source. Deployed alone: `index.py` must import nothing from orderflow."""
