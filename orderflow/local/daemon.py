"""Entry point of a background embedded AWS (`orderflow local start` spawns `python -m orderflow.local.daemon`)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading

from orderflow.errors import OrderflowError
from orderflow.local.server.embedded import EmbeddedAws
from orderflow.local.server.persistence import INTERVAL_SECONDS, discard
from orderflow.local.server.state import LocalServer, pid_file, recorded_server, state_file


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="orderflow-local-daemon")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--time-scale", type=float, default=1.0, help="AWS's durations times this")
    parser.add_argument("--realistic", action="store_true", help="AWS's control plane, with its delays and states")
    parser.add_argument("--account-concurrency", type=int, default=1000, help="Lambda's account concurrency limit")
    parser.add_argument("--fresh", action="store_true", help="start empty: discard the state kept from last time")
    return parser.parse_args()


def main() -> int:
    args = _arguments()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    kept = state_file()
    if args.fresh:
        discard(kept)
    try:
        aws = EmbeddedAws(
            port=args.port,
            time_scale=args.time_scale,
            realistic=args.realistic,
            state_file=kept,
            account_concurrency=args.account_concurrency,
        ).start()
    except OrderflowError as e:
        logging.error("%s", e)
        return 1
    server = LocalServer.of_this_process(
        aws.endpoint, aws.port, args.time_scale, args.realistic, aws.restored, args.fresh
    )
    server.save()
    logging.info("state: %s (kept in %s: writes journaled, snapshot every %gs)", server.state, kept, INTERVAL_SECONDS)
    pace = f"realistic control plane x{args.time_scale:g}" if args.realistic else "instant control plane"
    logging.info(
        "embedded AWS ready at %s (pid %d, %s, CloudWatch minute %gs, Lambda account concurrency %d)",
        aws.endpoint,
        os.getpid(),
        pace,
        60 * aws.time_scale,
        aws.account_concurrency,
    )
    stop.wait()
    logging.info("stopping")
    aws.stop()
    server = recorded_server()
    if server is not None and server.pid == os.getpid():
        pid_file().unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
