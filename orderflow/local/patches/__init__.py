"""moto made to behave as AWS: reversible patch sets, one per feature, guarded at start-up (moto), and the
machinery that applies and undoes them (patching)."""
