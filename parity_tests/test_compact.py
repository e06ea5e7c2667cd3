"""The compact track (hear-dual-compact, D <= 64): same API, same parity matrix, all four backends (tf2onnx's graph in
the full suite)."""

import numpy as np
import pytest
from tiers import tiers

import hear_dual.checkpoints
from hear_dual.parity import NATIVE, Backend, input_batch, run_matrix
from hear_dual.signals import SIGNAL_KINDS


@pytest.fixture(scope="module")
def compact_backends():
    return {name: Backend(name, hear_dual.checkpoints.path("compact")) for name in NATIVE}


def test_compact_sizes(compact_backends):
    for backend in compact_backends.values():
        model = backend.model
        assert model.timestamp_embedding_size == 32 and model.scene_embedding_size == 64
        assert model.spec.raw["track"] == "compact" and model.spec.name == "hear-dual-compact"
    e, t, s = compact_backends["torch"].embed(np.zeros((2, 20000), np.float32))
    assert e.shape == (2, 32, 32) and s.shape == (2, 64)


@pytest.mark.parametrize("kind", tiers(("chirp", "speech"), SIGNAL_KINDS + ("speech",)))
def test_compact_backend_pairs_agree(kind, compact_backends, spec, with_tf2onnx):
    if kind == "speech" and input_batch("speech", 1, 10, spec.sample_rate) is None:
        pytest.skip("FSDD not found at ../shared/data/fsdd (set HEAR_DUAL_FSDD)")
    backends = with_tf2onnx(compact_backends, hear_dual.checkpoints.path("compact"))
    lengths = {"short": 400 / 16000, "0.99s": 0.99, "2.74s": 2.74, "60s": 60.0}
    rows = run_matrix(backends, [kind], lengths, [1, 3])
    assert len(rows) == len(backends) * (len(backends) - 1) // 2 * len(lengths) * 2
    failures = [r for r in rows if not r["passed"]]
    assert not failures, failures


def test_checkpoint_paths():
    assert hear_dual.checkpoints.path() == hear_dual.checkpoints.path("base")
    assert hear_dual.checkpoints.path("compact") == hear_dual.checkpoints.path("hear-dual-compact")
    assert set(hear_dual.checkpoints.available()) == {"base", "seeded", "compact", "compact-seeded", "randproj",
                                                         "crepe-tiny", "musicnn-mtt"}
    with pytest.raises(ValueError, match="compact"):
        hear_dual.checkpoints.path("large")
