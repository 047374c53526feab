"""The deployment package: a byte-for-byte reproducible zip of `orderflow/lambda_code/`.

Reproducible so that its SHA-256 equals the function's CodeSha256 whenever the code has not changed: that is how
`up` tells new handler code from old without downloading anything.
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

LAMBDA_CODE_DIR = Path(__file__).resolve().parent.parent / "lambda_code"
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class LambdaPackage:
    zip_bytes: bytes

    @property
    def code_sha256(self) -> str:
        """The digest in the form Lambda reports as CodeSha256 (base64 of the SHA-256)."""
        return base64.b64encode(hashlib.sha256(self.zip_bytes).digest()).decode()


def build_package(source: Path = LAMBDA_CODE_DIR) -> LambdaPackage:
    """Zip every .py file of the handler directory (not caches), with fixed timestamps and permissions."""
    # __init__.py only makes the source importable for orderflow's own tests; Lambda does not need it.
    files = sorted(
        p
        for p in source.rglob("*.py")
        if "__pycache__" not in p.parts and p.relative_to(source).as_posix() != "__init__.py"
    )
    if not any(p.name == "index.py" for p in files):
        raise FileNotFoundError(f"no index.py in {source}: the handler index.lambda_handler cannot be packaged")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(source).as_posix(), date_time=_FIXED_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return LambdaPackage(buffer.getvalue())
