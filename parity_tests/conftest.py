from pathlib import Path

import pytest

from hear_dual.parity import BACKENDS, Backend


@pytest.fixture(scope="session")
def tf2onnx_graph(tmp_path_factory):
    """tf_impl's graph exported with tf2onnx (in a subprocess), checked by the exporter itself."""
    from hear_dual.tf_export import export_tf_graph

    return export_tf_graph("", tmp_path_factory.mktemp("tf2onnx") / "hear-dual-base.tf2onnx.onnx")


@pytest.fixture(scope="session")
def parity_backends(tf2onnx_graph):
    return {name: Backend(name, "", tf2onnx_graph) for name in BACKENDS}


@pytest.fixture(scope="session")
def tf2onnx_backend(tmp_path_factory):
    """checkpoint path -> a Backend on tf2onnx's export of tf_impl's graph for it, exported once per session."""
    from hear_dual.tf_export import export_tf_graph

    made = {}

    def backend(path: str) -> Backend:
        if path not in made:
            graph = export_tf_graph(path, tmp_path_factory.mktemp("tf2onnx") / f"{Path(path).stem}.tf2onnx.onnx")
            made[path] = Backend("tf2onnx", path, graph)
        return made[path]

    return backend


@pytest.fixture
def with_tf2onnx(request, tf2onnx_backend):
    """(backends, checkpoint path) -> the backends, plus tf2onnx's graph where this test is marked slow.

    An export takes 5-10 s a model: the fast tier checks the native backends (and tf2onnx on base, in test_golden),
    the full suite adds tf2onnx to every model's items marked slow (tiers.py)."""
    def add(backends: dict, path: str) -> dict:
        if request.node.get_closest_marker("slow") is None:
            return backends
        return backends | {"tf2onnx": tf2onnx_backend(path)}

    return add

