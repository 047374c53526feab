"""Converge a stack's resources: one module per resource, a planner that orders them, an executor that applies."""
