"""Writing results: strict JSON of reports, and files that are whole or absent.

Low in the package: the commands (compare, embed, evaluate) and the evaluation harness write through it.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import numpy as np


def jsonable(value):
    """The report with numpy scalars as python numbers and non-finite floats as None (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def _savez(file, **arrays) -> None:
    np.savez(file, **arrays)


def write_npz_atomic(path, arrays: dict) -> None:
    """np.savez to a hidden temporary file beside path, fsync, then os.replace: path is whole or absent."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            _savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
