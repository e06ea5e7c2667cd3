"""pairwise_distance (first HEAR API draft) in every backend: against scipy, across backends, bad shapes."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from hear_dual.parity import agreement, to_numpy

BACKENDS = ["torch", "tf", "onnx"]


@pytest.fixture(scope="module")
def embeddings(torch_model):
    import hear_dual.torch_impl as m

    rng = np.random.default_rng(0)
    a = to_numpy(m.get_timestamp_embeddings(rng.uniform(-1, 1, (20, 64000)).astype(np.float32), torch_model)[0])
    b = to_numpy(m.get_timestamp_embeddings(rng.uniform(-1, 1, (40, 64000)).astype(np.float32), torch_model)[0])
    return a, b


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("metric, scipy_metric", [("l1", "cityblock"), ("l2", "euclidean")])
def test_matches_scipy_in_float64(backend, backends, embeddings, metric, scipy_metric):
    module, _ = backends[backend]
    a, b = embeddings
    want = cdist(a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64), scipy_metric)
    got = to_numpy(module.pairwise_distance(a, b, metric=metric))
    assert got.shape == (20, 40) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=2e-5)
    assert np.array_equal(to_numpy(module.pairwise_distance(a, b)), to_numpy(module.pairwise_distance(a, b, "l1")))


def test_blocks_are_used_and_backends_agree(backends, embeddings, spec):
    from hear_dual.inputs import check_pairwise

    a, b = embeddings
    assert check_pairwise(a.shape, b.shape, "l1") < len(a)  # several blocks, so blocking is exercised
    results = {name: to_numpy(module.pairwise_distance(a, b)) for name, (module, _) in backends.items()}
    for name in ("tf", "onnx"):
        assert agreement(results["torch"], results[name], spec.tolerance, spec.min_cosine).passed


@pytest.mark.parametrize("backend", BACKENDS)
def test_self_distance_is_zero_and_symmetric(backend, backends, embeddings):
    module, _ = backends[backend]
    a, _ = embeddings
    d = to_numpy(module.pairwise_distance(a, a))
    assert np.all(np.diag(d) == 0)
    np.testing.assert_allclose(d, d.T, rtol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_shapes_and_metric(backend, backends):
    module, _ = backends[backend]
    with pytest.raises(ValueError, match=r"agree on \(n_frames, D\)"):
        module.pairwise_distance(np.zeros((2, 5, 8), np.float32), np.zeros((3, 6, 8), np.float32))
    with pytest.raises(ValueError, match="3-D"):
        module.pairwise_distance(np.zeros((2, 8), np.float32), np.zeros((3, 8), np.float32))
    with pytest.raises(ValueError, match="metric"):
        module.pairwise_distance(np.zeros((2, 5, 8), np.float32), np.zeros((3, 5, 8), np.float32), "cosine")
