"""torch_impl vs tf_impl from the same checkpoint: the parity gate on synthetic signals and real speech."""

import numpy as np
import pytest

from hear_dual.datasets import fsdd_batch
from hear_dual.parity import agreement
from hear_dual.signals import SIGNAL_KINDS, signal_batch


def both(backends, audio):
    out = {}
    for name, (module, model) in backends.items():
        e, t = module.get_timestamp_embeddings(audio, model)
        s = module.get_scene_embeddings(audio, model)
        out[name] = [np.asarray(x.cpu() if hasattr(x, "cpu") else x) for x in (e, t, s)]
    return out["torch"], out["tf"]


def assert_parity(spec, backends, audio):
    (te, tt, ts), (fe, ft, fs) = both(backends, audio)
    np.testing.assert_array_equal(tt, ft)
    for ref, other in ((te, fe), (ts, fs)):
        result = agreement(ref, other, spec.tolerance, spec.min_cosine)
        assert result.passed, result


@pytest.mark.parametrize("kind", SIGNAL_KINDS)
@pytest.mark.parametrize("seconds", [0.02, 0.99, 2.74])
def test_synthetic_signals(kind, seconds, spec, backends):
    assert_parity(spec, backends, signal_batch(kind, 3, int(seconds * spec.sample_rate), spec.sample_rate))


def test_real_speech(spec, backends):
    audio = fsdd_batch(spec.sample_rate, n_clips=12, seed=0)
    if audio is None:
        pytest.skip("FSDD not found at ../shared/data/fsdd (set HEAR_DUAL_FSDD)")
    assert_parity(spec, backends, audio)


def test_sixty_seconds(spec, backends):
    audio = np.concatenate([signal_batch(k, 1, 60 * spec.sample_rate // 4, spec.sample_rate)
                            for k in ("pink_noise", "chirp", "tone_mix", "square")], axis=1)
    assert_parity(spec, backends, audio)


def test_gate_detects_a_real_difference(spec, backends):
    """Self-check: the same comparison fails when one side really differs."""
    audio = signal_batch("tone_mix", 2, 16000, spec.sample_rate)
    (te, _, _), _ = both(backends, audio)
    nudged = te.copy()
    nudged[0, 3, 7] += 1e-3 * max(1.0, np.abs(te).max())
    assert not agreement(te, nudged, spec.tolerance, spec.min_cosine).passed
