"""How a function process is started: which Python (interpreters.find), which Runtime API client, which libraries.

- AWS's own client, `awslambdaric`, wherever it is installed (Linux: it publishes Linux wheels only). On the
  embedded AWS's own Python it runs whole; on another Python (the function's runtime version) its pure-Python parts
  run with `runtime_client.py` standing in for its compiled transport.
- Elsewhere (macOS), orderflow's `ric.py`, which tests keep equal to awslambdaric on Linux.
- The libraries Lambda's Python runtime bundles (boto3 and what it needs) come from the embedded AWS's own
  environment, linked into one folder when the function runs on another Python.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from orderflow.local.runtime.environment.interpreters import Interpreter, find

HERE = Path(__file__).resolve().parent
OWN_CLIENT = HERE / "ric.py"
# What the Python runtime offers a handler besides the standard library (boto3 and its dependencies), and what
# awslambdaric's Python parts need.
BUNDLED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")
AWS_CLIENT = ("awslambdaric", "simplejson")
CLIENT_VARIABLE = "ORDERFLOW_LOCAL_RUNTIME_CLIENT"  # "awslambdaric" or "orderflow": force one (tests compare them)


@dataclass(frozen=True)
class Launch:
    interpreter: Interpreter
    client: str  # "awslambdaric" | "orderflow"
    libraries: tuple[str, ...]  # folders on PYTHONPATH after the function's own code

    def command(self, handler: str) -> list[str]:
        # -s: not the user's site-packages. Not -I: the deployed code comes first on PYTHONPATH, as on Lambda.
        python = [self.interpreter.executable, "-s"]
        if self.client == "awslambdaric":
            return [*python, "-m", "awslambdaric", handler]
        return [*python, str(OWN_CLIENT), handler]

    def pythonpath(self, task_root: Path) -> str:
        return os.pathsep.join([str(task_root), *self.libraries])

    @property
    def needs(self) -> tuple[str, ...]:
        """What the function process must be able to read (isolation keeps it visible)."""
        return (*self.interpreter.prefixes, *self.libraries, str(HERE))


def has_awslambdaric() -> bool:
    return importlib.util.find_spec("awslambdaric") is not None


def _location(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return None
    origin = Path(spec.origin)
    return origin.parent if origin.name == "__init__.py" else origin


def linked_libraries(folder: Path, modules: tuple[str, ...], with_transport: bool) -> Path:
    """A folder of links to this environment's pure-Python packages (and the transport stand-in), for a function
    running on another Python."""
    folder.mkdir(parents=True, exist_ok=True)
    for module in modules:
        source = _location(module)
        link = folder / (source.name if source else module)
        if source is not None and not link.exists():
            link.symlink_to(source)
    if with_transport and not (folder / "runtime_client.py").exists():
        (folder / "runtime_client.py").symlink_to(HERE / "runtime_client.py")
    return folder


def choose_client() -> str:
    forced = os.environ.get(CLIENT_VARIABLE)
    if forced in ("awslambdaric", "orderflow"):
        return forced
    return "awslambdaric" if sys.platform.startswith("linux") and has_awslambdaric() else "orderflow"


def launch_for(runtime: str, work_dir: Path) -> Launch:
    interpreter = find(runtime)
    client = choose_client()
    if client == "awslambdaric" and not has_awslambdaric():
        client = "orderflow"
    if interpreter.is_ours:
        return Launch(interpreter, client, ())
    foreign = BUNDLED + (AWS_CLIENT if client == "awslambdaric" else ())
    folder = linked_libraries(work_dir / f"libraries-{client}", foreign, with_transport=client == "awslambdaric")
    return Launch(interpreter, client, (str(folder),))
