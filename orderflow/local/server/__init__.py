"""The embedded AWS as a server: moto on loopback with orderflow's layers (embedded), the background daemon's
start and stop (control), what it records of itself (state), and the signed requests it reads (wire)."""

from orderflow.local.server.embedded import LOOPBACK, EmbeddedAws

__all__ = ["LOOPBACK", "EmbeddedAws"]
