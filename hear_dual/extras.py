"""Optional dependencies: a feature that needs an extra says which, in one line, instead of a traceback from
inside another package.

    onnxruntime = require("onnxruntime", "hear_dual.onnx_impl")
    # ImportError: hear_dual.onnx_impl needs onnxruntime: pip install "hear-dual[onnx]"
"""

from __future__ import annotations

import importlib
import importlib.util

# the top-level module -> the extra of pyproject.toml that installs it
EXTRAS = {"torch": "torch", "tensorflow": "tf", "onnxruntime": "onnx", "tf2onnx": "export", "ray": "ray",
          "matplotlib": "plot", "sklearn": "eval"}


class MissingExtra(ImportError):
    """A feature's optional dependency is not installed; the message says what to install."""


def missing_extra(error: ModuleNotFoundError, feature: str) -> ImportError:
    """The one-line error for `error` (an import of one of EXTRAS that failed) in `feature`; any other missing
    module (a broken install) is returned as it is."""
    root = (error.name or "").split(".")[0]
    if root not in EXTRAS:
        return error
    return MissingExtra(f"{feature} needs {root}: pip install \"hear-dual[{EXTRAS[root]}]\"")


def installed(module: str) -> bool:
    """Whether `module` can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def require(module: str, feature: str):
    """Import `module` for `feature`, or raise the one-line MissingExtra."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        raise missing_extra(e, feature) from None
