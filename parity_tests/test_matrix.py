"""Every backend pair x input class x length x batch size, on timestamp and scene embeddings.

Pairs among torch, tf, onnx (ONNX Runtime on the checkpoint's torch export) and tf2onnx (ONNX Runtime on
tf_impl exported with tf2onnx). Gate from the spec: max|a-b| <= tol * max(1, max|ref|), per-embedding
cosine >= 1 - 1e-8 (float64), timestamps identical.
"""

import numpy as np
import pytest

from hear_dual.parity import BATCHES, LENGTHS_S, input_batch, run_matrix
from hear_dual.signals import SIGNAL_KINDS

INPUTS = SIGNAL_KINDS + ("speech",)


def cases():
    for kind in INPUTS:
        for length in LENGTHS_S:
            for batch in BATCHES:
                marks = [pytest.mark.slow] if (length == "60s" or batch == 16) else []
                yield pytest.param(kind, length, batch, marks=marks, id=f"{kind}-{length}-b{batch}")


@pytest.mark.parametrize("kind, length, batch", cases())
def test_all_backend_pairs_agree(kind, length, batch, parity_backends, spec):
    if kind == "speech" and input_batch("speech", 1, 10, spec.sample_rate) is None:
        pytest.skip("FSDD not found at ../shared/data/fsdd (set HEAR_DUAL_FSDD)")
    rows = run_matrix(parity_backends, [kind], {length: LENGTHS_S[length]}, [batch])
    assert len(rows) == 6
    failures = [r for r in rows if not r["passed"]]
    assert not failures, failures


def test_short_input_is_shorter_than_one_frontend_window(spec):
    assert LENGTHS_S["short"] * spec.sample_rate < spec.frontend["win_length"]


@pytest.mark.parametrize("name", ["torch", "tf", "onnx", "tf2onnx"])
def test_clip_alone_equals_clip_in_a_batch(name, parity_backends, spec):
    backend = parity_backends[name]
    batch = input_batch("speech", 16, 40000, spec.sample_rate)
    if batch is None:
        batch = input_batch("pink_noise", 16, 40000, spec.sample_rate)
    together = backend.embed(batch)
    for i in (0, 7, 15):
        alone = backend.embed(batch[i : i + 1])
        for got, want in zip(alone, together):
            scale = max(1.0, float(np.abs(want).max()))
            assert np.abs(got[0] - want[i]).max() <= spec.tolerance * scale
