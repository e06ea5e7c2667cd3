"""The two tiers of a parity test over input kinds: a few kinds through the native backends in the fast tier, every
kind with tf2onnx's graph added (conftest's with_tf2onnx) in the full suite."""

import pytest


def tiers(fast, every) -> list:
    """Parameters: each `fast` kind (id '<kind>'), then each of `every` marked slow (id '<kind>-full')."""
    return [*(pytest.param(k, id=k) for k in fast),
            *(pytest.param(k, marks=pytest.mark.slow, id=f"{k}-full") for k in every)]
