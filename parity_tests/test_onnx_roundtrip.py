"""The ONNX side: the torch export is the checkpoint; tf_impl exported with tf2onnx holds the same weights."""

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from hear_dual.checkpoint import read_checkpoint
from hear_dual.tf_export import unaccounted_parameters


def test_tf2onnx_graph_holds_every_weight_bit_for_bit(tf2onnx_graph, spec):
    graph = onnx.load(tf2onnx_graph)
    checkpoint = read_checkpoint()
    assert unaccounted_parameters(graph, spec, checkpoint.params, checkpoint.constants) == []


def test_weight_check_notices_a_changed_weight(tf2onnx_graph, spec):
    graph = onnx.load(tf2onnx_graph)
    checkpoint = read_checkpoint()
    # one tap of a 384 -> 384 kernel (tf_impl multiplies by one kernel tap at a time)
    target = next(i for i in graph.graph.initializer if numpy_helper.to_array(i).shape == (384, 384))
    array = numpy_helper.to_array(target).copy()
    array.flat[0] = np.nextafter(array.flat[0], np.float32(np.inf))  # one ulp
    target.CopyFrom(numpy_helper.from_array(array, target.name))
    assert len(unaccounted_parameters(graph, spec, checkpoint.params, checkpoint.constants)) == 1


def test_tf2onnx_graph_has_no_unsupported_ops(tf2onnx_graph):
    ops = {node.op_type for node in onnx.load(tf2onnx_graph).graph.node}
    assert not ops & {"DFT", "STFT", "Erfc", "ComplexAbs"}, ops


def test_onnx_impl_needs_neither_torch_nor_tensorflow(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys, builtins\n"
        "real = builtins.__import__\n"
        "def guard(name, *a, **k):\n"
        "    if name.split('.')[0] in ('torch', 'tensorflow'): raise ImportError('blocked ' + name)\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = guard\n"
        "import numpy as np, hear_dual.onnx_impl as m\n"
        "model = m.load_model()\n"
        "e, t = m.get_timestamp_embeddings(np.zeros((2, 16000), np.float32), model)\n"
        "s = m.get_scene_embeddings(np.zeros((2, 16000), np.float32), model)\n"
        "assert e.shape == (2, 25, 512) and s.shape == (2, 1024) and t.dtype == np.float32\n"
        "assert 'torch' not in sys.modules and 'tensorflow' not in sys.modules\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]


@pytest.mark.parametrize("n", [1, 640, 16001])
def test_onnx_impl_api_shapes(n, spec):
    import hear_dual.onnx_impl as m

    model = m.load_model()
    e, t = m.get_timestamp_embeddings(np.zeros((3, n), np.float32), model)
    assert e.shape == (3, (n - 1) // 640 + 1, 512) and e.dtype == np.float32 and t.dtype == np.float32


def test_the_fast_tier_leaves_tf2onnx_out(with_tf2onnx):
    assert with_tf2onnx({"torch": None}, "no export is made") == {"torch": None}


@pytest.mark.slow
def test_the_full_suite_adds_tf2onnx_to_slow_items(with_tf2onnx):
    """conftest's with_tf2onnx: what the full suite adds to each model's slow items is tf2onnx's graph of it."""
    import hear_dual.checkpoints

    backends = with_tf2onnx({}, hear_dual.checkpoints.path("compact"))
    assert list(backends) == ["tf2onnx"] and backends["tf2onnx"].spec.name == "hear-dual-compact"
    e, _, s = backends["tf2onnx"].embed(np.zeros((1, 4000), np.float32))
    assert e.shape == (1, 7, 32) and s.shape == (1, 64)     # a timestamp every 40 ms
