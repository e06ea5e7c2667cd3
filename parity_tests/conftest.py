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
