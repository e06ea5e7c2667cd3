"""Quiet by default: the frameworks' start-up banners and advice stay off hear-dual's output, errors never do.

TensorFlow 2.21 prints its oneDNN banner ("oneDNN custom operations are on ...", twice) and absl's pre-init notice
from C++ while it loads, whatever TF_CPP_MIN_LOG_LEVEL says, and its CPU-feature advice at INFO level once
running; ONNX Runtime logs warnings (constant folding it skipped) for graphs it runs anyway. None of these is
about the user's data. So, unless the user asks for them (HEAR_DUAL_VERBOSE=1, `hear-dual --verbose`, or
TF_CPP_MIN_LOG_LEVEL=0 set themselves), importing TensorFlow through `import_tensorflow` drops exactly those lines
from stderr and passes every other line through, TF's runtime log keeps warnings and errors only (level 2, unless the
user set a level), and ONNX Runtime sessions log errors only.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import types
from contextlib import contextmanager

# Lines TensorFlow prints while loading that carry no information about the work (matched as substrings).
TF_BANNERS = ("oneDNN custom operations are on", "All log messages before absl::InitializeLog() is called",
              "cpu_feature_guard.cc", "rebuild TensorFlow with the appropriate compiler flags")
_USER_TF_LEVEL = os.environ.get("TF_CPP_MIN_LOG_LEVEL")      # read before anything of ours sets it


def verbose() -> bool:
    """True when the user asked to see the frameworks' own messages."""
    return os.environ.get("HEAR_DUAL_VERBOSE", "") not in ("", "0") or _USER_TF_LEVEL == "0"


@contextmanager
def without_banners():
    """Run the block with stderr (the file descriptor, which C++ writes to) captured, then print back every line but
    the frameworks' start-up banners. Exceptions propagate as usual; nothing else is dropped."""
    if verbose():
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")      # TF's runtime: warnings and errors only (no INFO advice)
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode(errors="replace")
            sys.stderr.write("".join(line for line in text.splitlines(keepends=True)
                                     if not any(banner in line for banner in TF_BANNERS)))
            sys.stderr.flush()


def import_tensorflow(feature: str = "hear_dual.tf_impl"):
    """`import tensorflow`, without its start-up banners unless verbose() and without Keras (keras_deferred);
    without TensorFlow, one line saying which extra installs it."""
    from hear_dual.extras import require

    with without_banners(), keras_deferred():
        return require("tensorflow", feature)


@contextmanager
def keras_deferred():
    """While TensorFlow loads, `keras` is a placeholder module with Keras's own spec and nothing under it, so
    TensorFlow finds Keras's folders for `tf.keras` but its eager `import keras.src.optimizers` fails (it catches
    the ImportError) instead of loading all of Keras 3, and with it scikit-learn and matplotlib where installed. No
    hear-dual code uses Keras: TensorFlow's import 583 -> 479 MiB resident, 3.0 -> 1.7 s (measured 2026-12-07).
    `tf.keras` and `import keras` load Keras when first used, as TensorFlow's lazy loader does; the one thing deferred
    with it is the optimizers' registration for SavedModels, done whenever Keras loads. Nothing changes when
    TensorFlow or Keras is already imported: a program that imports TensorFlow before hear-dual keeps TF's own
    behaviour."""
    spec = None
    if "tensorflow" not in sys.modules and "keras" not in sys.modules:
        spec = importlib.util.find_spec("keras")        # a top-level name: found, not imported
    if spec is None:
        yield
        return
    placeholder = types.ModuleType("keras")
    placeholder.__spec__ = spec                         # no __path__: importing anything under it fails
    sys.modules["keras"] = placeholder
    try:
        yield
    finally:
        if sys.modules.get("keras") is placeholder:
            del sys.modules["keras"]


def onnxruntime_log_level() -> int:
    """ONNX Runtime's session log_severity_level (0 verbose, 1 info, 2 warning, 3 error): warnings when verbose,
    else errors only."""
    return 2 if verbose() else 3
