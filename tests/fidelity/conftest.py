"""The fidelity suite runs on an embedded AWS of its own, through the same plumbing as the end-to-end tests."""

from tests.e2e.conftest import aws, cli, embedded, home, stack  # noqa: F401 - fixtures, re-exported for this folder
