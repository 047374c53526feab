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
import tempfile
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

    def environment(self, task_root: Path) -> dict[str, str]:
        """PYTHONPATH (the deployed code first, as on Lambda), and for another Python a bytecode cache of its own:
        the linked libraries hold bytecode for this Python only, and compiling boto3 at every cold start costs
        about 0.4 s of CPU."""
        variables = {"PYTHONPATH": os.pathsep.join([str(task_root), *self.libraries])}
        if self.libraries:
            variables |= {"PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": str(bytecode_cache())}
        return variables

    @property
    def needs(self) -> tuple[str, ...]:
        """What the function process must be able to read (the fence binds it, read-only)."""
        cache = (str(bytecode_cache()),) if self.libraries else ()
        return (*self.interpreter.prefixes, *self.libraries, str(HERE), *cache)


def _private_folder(name: str) -> Path:
    """A folder of this user's under the temporary directory, kept across runs (private: what it holds is code)."""
    folder = Path(tempfile.gettempdir()) / f"orderflow-{name}-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def bytecode_cache() -> Path:
    return _private_folder("bytecode")


def has_awslambdaric() -> bool:
    return importlib.util.find_spec("awslambdaric") is not None


def _location(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return None
    origin = Path(spec.origin)
    return origin.parent if origin.name == "__init__.py" else origin


def _link(link: Path, target: Path) -> None:
    """`link` -> `target`, replaced atomically when it points elsewhere (another install of orderflow)."""
    if link.is_symlink() and Path(os.readlink(link)) == target:
        return
    staging = link.with_name(f".{link.name}.{os.getpid()}")
    staging.unlink(missing_ok=True)
    staging.symlink_to(target)
    os.replace(staging, link)


def linked_libraries(folder: Path, modules: tuple[str, ...], with_transport: bool) -> Path:
    """A folder of links to this environment's pure-Python packages (and the transport stand-in), for a function
    running on another Python. Its path stays the same from run to run, so the bytecode cache (keyed by path) keeps
    serving cold starts."""
    folder.mkdir(parents=True, exist_ok=True)
    for module in modules:
        source = _location(module)
        if source is not None:
            _link(folder / source.name, source)
    if with_transport:
        _link(folder / "runtime_client.py", HERE / "runtime_client.py")
    return folder


def choose_client() -> str:
    forced = os.environ.get(CLIENT_VARIABLE)
    if forced in ("awslambdaric", "orderflow"):
        return forced
    return "awslambdaric" if sys.platform.startswith("linux") and has_awslambdaric() else "orderflow"


def launch_for(runtime: str) -> Launch:
    """How to start a function of `runtime`."""
    interpreter = find(runtime)
    client = choose_client()
    if client == "awslambdaric" and not has_awslambdaric():
        client = "orderflow"
    if interpreter.is_ours:
        return Launch(interpreter, client, ())
    foreign = BUNDLED + (AWS_CLIENT if client == "awslambdaric" else ())
    folder = linked_libraries(
        _private_folder("libraries") / f"python{interpreter.version}-{client}", foreign, client == "awslambdaric"
    )
    compile_ahead(interpreter, folder)
    return Launch(interpreter, client, (str(folder),))


def compile_ahead(interpreter: Interpreter, folder: Path) -> None:
    """Fill the bytecode cache for the linked libraries once, here: fenced functions read it but cannot write it
    (no function may leave code for another to run), and compiling boto3 at every cold start costs about 0.4 s."""
    marker = bytecode_cache() / f".compiled-{interpreter.version}-{folder.name}"
    if marker.exists():
        return
    import subprocess

    targets = [str(entry) for entry in sorted(folder.iterdir()) if not entry.name.startswith(".")]
    result = subprocess.run(
        [interpreter.executable, "-s", "-m", "compileall", "-q", "-j", "0", *targets],
        env={**os.environ, "PYTHONPYCACHEPREFIX": str(bytecode_cache())},
        capture_output=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if result.returncode == 0:
        marker.touch()
