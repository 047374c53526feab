"""AWS's control plane at AWS's pace (`--realistic`): delays and transient states (control_plane)."""
