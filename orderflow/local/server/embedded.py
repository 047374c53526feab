"""The embedded AWS: moto's server on 127.0.0.1 plus orderflow's Lambda runtime, in this process."""

from __future__ import annotations

import errno
import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from orderflow.arns import parse_arn
from orderflow.errors import EndpointError, PortInUse
from orderflow.local.iam.identities import Identities

LOOPBACK = "127.0.0.1"
QUOTA_VARIABLE = "MOTO_LAMBDA_CONCURRENCY_QUOTA"


def _require_moto() -> None:
    try:
        import moto.server  # noqa: F401
        import werkzeug  # noqa: F401
    except ImportError as e:
        raise EndpointError(
            f"The embedded AWS needs moto's server ({e.name} is not installed): pip install 'orderflow[local]'"
        ) from e


def deployed_code(function_arn: str) -> bytes:
    """The zip bytes moto stored for a function (GetFunction offers no download link for ZipFile uploads)."""
    from moto.awslambda.models import lambda_backends

    arn = parse_arn(function_arn)
    return lambda_backends[arn.account][arn.region].get_function(arn.name.split(":")[0]).code_bytes


def regions_with_mappings() -> Iterator[str]:
    """Regions where some event source mapping exists: the only ones the runtime needs to watch."""
    from moto.awslambda.models import lambda_backends

    seen = set()
    for _account, backends in list(lambda_backends.items()):
        for region, backend in list(backends.items()):
            if backend._event_source_mappings and region not in seen:
                seen.add(region)
                yield region


class EmbeddedAws:
    """Start with `start()` (or as a context manager); `endpoint` is then the URL every AWS client can use."""

    def __init__(
        self,
        port: int = 0,
        runtime: bool = True,
        pollers_per_mapping: int | None = None,
        wrap_app: Callable[[Any], Any] | None = None,
        in_process_pollers: bool = True,
        time_scale: float = 1.0,
        realistic: bool = False,
        control_plane: Any = None,
        cloudwatch: bool = True,
        state_file: Path | None = None,
        account_concurrency: int = 1000,
    ) -> None:
        self.requested_port = port
        # A WSGI middleware around moto's app, e.g. the benchmarks' API call counter.
        self.wrap_app = wrap_app
        self.with_runtime = runtime
        # False: the pollers reach SQS over HTTP like any client (the benchmark measures what in-process saves).
        self.in_process_pollers = in_process_pollers
        self.pollers_per_mapping = pollers_per_mapping or int(os.environ.get("ORDERFLOW_LOCAL_POLLERS", "5"))
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.runtime: Any = None
        self.roles = Identities()
        # AWS's durations times this: CloudWatch's minute (SQS metrics, alarm evaluation) always, and with
        # `realistic` the control plane's delays (control_plane.DELAYS). One concept, one number.
        self.time_scale = time_scale
        # A ControlPlane made by the caller (a test's, on its own clock); else one is made when `realistic`.
        self.control_plane = control_plane
        self.is_realistic = realistic or control_plane is not None
        self.realistic: Any = None
        # False: no SQS metrics, no alarm evaluation, no Lambda metrics (the benchmark measures what they cost).
        self.with_cloudwatch = cloudwatch
        self.cloudwatch_minute: Any = None
        self._patched = False
        self._moto_app: Any = None
        # Where its state is kept across restarts (the daemon's); None: it starts and ends empty (tests, demo).
        self.state_file = state_file
        self.snapshots: Any = None
        self.restored: Any = None
        # The account's concurrency limit per region (AWS's default 1,000; a new account's may be far lower).
        self.account_concurrency = account_concurrency
        self._quota_before: str | None = None

    @property
    def port(self) -> int:
        return self._server.server_port

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> EmbeddedAws:
        _require_moto()
        from orderflow.local.patches import moto as moto_patches

        moto_patches.PATCHES.enter()  # left in stop(), whatever happens next
        self._patched = True
        # moto's own knob: PutFunctionConcurrency then refuses a reservation that leaves under 100 unreserved.
        self._quota_before = os.environ.get(QUOTA_VARIABLE)
        os.environ[QUOTA_VARIABLE] = str(self.account_concurrency)
        moto_patches.route_invocations_to(lambda: self.runtime.host if self.runtime else None)
        app = self._app()
        moto_patches.use_realistic(self.realistic)
        if self.state_file is not None:
            from orderflow.local.server.persistence import Snapshots, restore

            # Before anything is served: the last snapshot, then the journal after it, replayed through moto alone
            # (each request was authorised and passed the realism when it was first answered).
            self.restored = restore(self.state_file, self._moto_app)
            self.snapshots = Snapshots(self.state_file).start()
            app = self.snapshots.middleware(app)
        self._listen(self.wrap_app(app) if self.wrap_app else app)
        if self.with_cloudwatch:
            from orderflow.local.cloudwatch.minute import CloudWatchMinute

            self.cloudwatch_minute = CloudWatchMinute(self.endpoint, self.time_scale).start()
        if self.with_runtime:
            self.start_runtime()
        return self

    def _app(self) -> Any:
        """moto's server, behind the control plane's realism (when asked for) and IAM's enforcement."""
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        from orderflow.local.iam.enforcement import Enforcement
        from orderflow.local.iam.mapping_rules import MappingRules

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        app: Any = DomainDispatcherApplication(create_backend_app)
        self._moto_app = app
        if self.is_realistic:
            from orderflow.local.realism.control_plane import ControlPlane
            from orderflow.local.realism.services import RealisticAws

            plane = self.control_plane or ControlPlane(self.time_scale)
            app = self.realistic = RealisticAws(app, plane, account=lambda: DEFAULT_ACCOUNT_ID)
            self.roles.plane = plane
        rules = MappingRules(self.roles, default_account=lambda: DEFAULT_ACCOUNT_ID)
        if self.realistic is not None:
            self.realistic.check_mappings_with(rules.problem_of)
        return Enforcement(
            app,
            self.roles,
            rules,
            on_lambda_write=lambda: self.runtime.changed() if self.runtime else None,
        )

    def _listen(self, app: Any) -> None:
        from werkzeug.serving import make_server

        try:
            self._server = make_server(LOOPBACK, self.requested_port, app, threaded=True)
        except OSError as e:
            self.stop()
            if e.errno == errno.EADDRINUSE:
                raise PortInUse(
                    f"Port {self.requested_port} on {LOOPBACK} is already in use: choose another with --port"
                ) from e
            raise EndpointError(f"Cannot listen on {LOOPBACK}:{self.requested_port}: {e.strerror}") from e
        self._thread = threading.Thread(target=self._server.serve_forever, name="embedded-aws", daemon=True)
        self._thread.start()

    def start_runtime(self) -> None:
        """Start the Lambda runtime (again): the AWS APIs keep serving while it is stopped, as queues keep
        filling on AWS while Lambda's pollers are away."""
        from orderflow.local.runtime.service import LambdaRuntime

        if self.runtime is None:
            from moto.core import DEFAULT_ACCOUNT_ID

            from orderflow.local.iam.queue_access import InProcessQueues
            from orderflow.local.patches import moto as moto_patches
            from orderflow.local.patches.lambda_concurrency import reservations
            from orderflow.local.runtime.concurrency import SCALING_MINUTE_SECONDS, Concurrency, ScalingRules

            self.runtime = LambdaRuntime(
                self.endpoint,
                deployed_code,
                regions_with_mappings,
                lambda_may_assume=self.roles.lambda_may_assume,
                report_processing_result=moto_patches.report_processing_result,
                scaling=ScalingRules(initial=self.pollers_per_mapping, minute=SCALING_MINUTE_SECONDS * self.time_scale),
                concurrency=Concurrency(
                    self.account_concurrency, lambda region: reservations(DEFAULT_ACCOUNT_ID, region)
                ),
                # The pollers live beside the queues, as Lambda's live inside AWS: no HTTP round trip.
                queue_client=(
                    (lambda region, credentials: InProcessQueues(self.roles, credentials.access_key_id, region))
                    if self.in_process_pollers
                    else None
                ),
                publish_metrics=self.with_cloudwatch,
            )
            if self.realistic is not None:
                realistic = self.realistic
                self.runtime.host.on_invoke = lambda spec: realistic.function_invoked(spec.region, spec.name)
            self.runtime.start()

    def stop_runtime(self) -> None:
        if self.runtime is not None:
            self.runtime.stop()
            self.runtime = None

    def stop(self) -> None:
        from orderflow.local.patches import moto as moto_patches

        self.stop_runtime()
        if self.cloudwatch_minute is not None:
            self.cloudwatch_minute.stop()
            self.cloudwatch_minute = None
        if self.realistic is not None:
            self.realistic.plane.stop()
            moto_patches.use_realistic(None)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self.snapshots is not None:
            self.snapshots.stop()  # the last snapshot: nothing is served or run any more
            self.snapshots = None
        if self._patched:
            self._patched = False
            if self._quota_before is None:
                os.environ.pop(QUOTA_VARIABLE, None)
            else:
                os.environ[QUOTA_VARIABLE] = self._quota_before
            moto_patches.PATCHES.leave()  # the last embedded AWS to stop gives moto back as it was

    def __enter__(self) -> EmbeddedAws:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
