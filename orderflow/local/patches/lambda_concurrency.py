"""Lambda's reserved concurrency as AWS reports it: moto's GetFunction omits a reservation of 0 (it tests the value
for truth), which is exactly the reservation that throttles everything. Guarded by moto.check_targets."""

from __future__ import annotations

from typing import Any

from orderflow.local.patches.patching import Patch


def reservations(account: str, region: str) -> dict[str, int]:
    """Every function's reserved concurrency in one account and region (name -> R), from moto's own state."""
    from moto.awslambda.models import lambda_backends

    backend = lambda_backends[account][region]
    return {
        fn.function_name: int(fn.reserved_concurrency)
        for fn in backend.list_functions()
        if fn.reserved_concurrency is not None and str(fn.reserved_concurrency) != ""
    }


def report_reservation_of_zero() -> list[Patch]:
    from moto.awslambda.models import LambdaFunction

    original = LambdaFunction.get_code

    def get_code(self: Any) -> dict[str, Any]:
        response = original(self)
        if self.reserved_concurrency is not None and int(self.reserved_concurrency) == 0:
            response["Concurrency"] = {"ReservedConcurrentExecutions": 0}
        return response

    return [Patch(LambdaFunction, "get_code", get_code)]
