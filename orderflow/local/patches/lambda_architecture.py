"""Lambda's UpdateFunctionCode takes `Architectures` (Lambda API reference, UpdateFunctionCode: "The instruction set
architecture that the function supports"); moto's drops it, so `up --architecture arm64` on an existing function
never converged on the embedded AWS. Guarded by moto.check_targets."""

from __future__ import annotations

from typing import Any

from orderflow.local.patches.patching import Patch


def apply_architectures_on_code_update() -> list[Patch]:
    from moto.awslambda.models import LambdaFunction

    original = LambdaFunction.update_function_code

    def update_function_code(self: Any, updated_spec: dict[str, Any]) -> dict[str, Any]:
        if updated_spec.get("Architectures"):
            self.architectures = list(updated_spec["Architectures"])  # moto's setter validates as Lambda does
        return original(self, updated_spec)

    return [Patch(LambdaFunction, "update_function_code", update_function_code)]
