"""Chunked inference is exact: results equal the whole-clip computation at chunk boundaries, for two
chunk sizes, in every backend; nothing depends on the chunk size."""

import numpy as np
import pytest

from hear_dual.parity import agreement, to_numpy

BACKENDS = ["torch", "tf", "onnx"]


def embed(module, model, audio, chunk_timestamps):
    saved = model.chunk_timestamps
    model.chunk_timestamps = chunk_timestamps
    try:
        e, t = module.get_timestamp_embeddings(audio, model)
        s = module.get_scene_embeddings(audio, model)
    finally:
        model.chunk_timestamps = saved
    return [to_numpy(x) for x in (e, t, s)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("chunk_timestamps", [25, 60])
@pytest.mark.parametrize("k, offset", [(1, -1), (1, 0), (1, 1), (3, -1), (3, 0), (3, 1)])
def test_chunk_boundaries_match_whole_clip(backend, backends, spec, chunk_timestamps, k, offset):
    module, model = backends[backend]
    n = k * chunk_timestamps * spec.hop_samples + offset
    audio = np.random.default_rng(k).uniform(-1, 1, (2, n)).astype(np.float32)
    audio[1] *= np.linspace(0, 1, n, dtype=np.float32)  # not stationary: chunks really differ
    whole = embed(module, model, audio, 10**9)
    chunked = embed(module, model, audio, chunk_timestamps)
    np.testing.assert_array_equal(whole[1], chunked[1])
    for ref, got in ((whole[0], chunked[0]), (whole[2], chunked[2])):
        assert agreement(ref, got, spec.tolerance, spec.min_cosine).passed


def test_automatic_chunk_size_bounds_the_batch(torch_model, tf_model, onnx_model, spec):
    from hear_dual.audio import auto_chunk_timestamps

    for model in (torch_model, tf_model, onnx_model):
        assert model.chunk_timestamps is None  # automatic unless set
    seconds = {n: auto_chunk_timestamps(spec, n) * spec.hop_samples / spec.sample_rate for n in (1, 4, 16, 1000)}
    assert seconds[1] == seconds[4] == 30.0          # 30 s per sound at most
    assert seconds[16] == 7.48                       # about 2 minutes across the batch
    assert seconds[1000] == 1.0                      # never below one second per chunk


def test_a_backend_may_ask_for_its_own_chunk_budget():
    """tf_impl runs a light framed model's chunks at 4x the shared budget (its fixed cost per op); the plan honours it
    for timestamps and for scene frames. CREPE full (2.7 GFLOP a frame: as fast at 1x, 1225 MiB on 20 minutes at 4x)
    and the patch models keep the shared one (with 4x, 20 minutes of musicnn in TensorFlow would peak at 1254 MiB)."""
    from hear_dual.audio import CHUNK_ACTIVATION_FLOATS, embedding_plan
    from hear_dual.spec import Spec
    from hear_dual.tf_impl.model import chunk_budget

    crepe = Spec.builtin("hear-dual-crepe-tiny")
    n = 10 * crepe.sample_rate
    for scene in (False, True):
        shared = embedding_plan(crepe, n, 4, scene=scene)
        larger = embedding_plan(crepe, n, 4, scene=scene, activation_floats=4 * CHUNK_ACTIVATION_FLOATS)
        assert len(larger.steps) <= -(-len(shared.steps) // 3)
        assert larger.n_outputs == shared.n_outputs
    assert chunk_budget(crepe) == 4 * CHUNK_ACTIVATION_FLOATS
    assert chunk_budget(Spec.builtin("hear-dual-crepe-full")) == CHUNK_ACTIVATION_FLOATS
    assert chunk_budget(Spec.builtin("hear-dual-musicnn-mtt")) == CHUNK_ACTIVATION_FLOATS
