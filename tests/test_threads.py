"""onnx_impl's thread default: ONNX Runtime's own (one thread per physical core) unless the user caps OpenMP with
OMP_NUM_THREADS, as torch and TensorFlow read it, or passes threads=. (torch and TensorFlow read the variable
themselves.)"""

import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

CODE = ("import hear_dual.onnx_impl as m\n"
        "print(m.load_model('compact').session.get_session_options().intra_op_num_threads,"
        " m.load_model('compact', threads=3).session.get_session_options().intra_op_num_threads)")


@pytest.mark.parametrize("cap, expected", [(None, "0 3"), ("1", "1 3"), ("2", "2 3")])
def test_onnx_impl_follows_the_users_thread_cap(cap, expected):
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"} | ({"OMP_NUM_THREADS": cap} if cap else {})
    run = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split()[-2:] == expected.split()     # 0: ONNX Runtime's default, one per physical core


@pytest.mark.parametrize("value, expected", [("4", 4), ("4,2", 4), (" 2 ", 2), ("", 0), ("auto", 0), ("-1", 0)])
def test_omp_num_threads_is_read_as_openmp_does(monkeypatch, value, expected):
    from hear_dual.onnx_impl import omp_threads

    monkeypatch.setenv("OMP_NUM_THREADS", value)
    assert omp_threads() == expected


@pytest.fixture(scope="module", params=["base", "crepe-tiny", "musicnn-mtt"])
def whole_and_split(request):
    """The same graph on one session with every thread, and split into single-threaded runs side by side."""
    from hear_dual import onnx_impl
    from hear_dual.checkpoint import read_checkpoint
    from hear_dual.onnx_graph import build_graph
    from hear_dual.weights import resolve

    checkpoint = read_checkpoint(resolve(request.param))
    graph = build_graph(checkpoint.spec, checkpoint.params, checkpoint.constants).SerializeToString()
    whole = onnx_impl.OnnxModel(checkpoint.spec, graph, threads=2, split=False)
    split = onnx_impl.OnnxModel(checkpoint.spec, graph, threads=2, chunk_timestamps=8)   # small chunks: many pieces
    assert (whole.workers, split.workers) == (1, 2)
    return onnx_impl, whole, split


@pytest.mark.parametrize("n_sounds, seconds", [(1, 0.3), (3, 2.7), (4, 1.0)])
def test_runs_side_by_side_give_the_bits_of_one_whole_run(whole_and_split, n_sounds, seconds):
    """Rows cut across runs (an odd count too), chunks run ahead of the one written, one row alone: the same
    bits as one session running every piece whole, in timestamp and scene embeddings."""
    onnx_impl, whole, split = whole_and_split
    rng = np.random.default_rng(n_sounds)
    audio = (0.3 * rng.standard_normal((n_sounds, int(seconds * whole.sample_rate)))).astype(np.float32)
    want, want_times = onnx_impl.get_timestamp_embeddings(audio, whole)
    got, got_times = onnx_impl.get_timestamp_embeddings(audio, split)
    assert np.isfinite(want).all() and want.shape[:2] == want_times.shape and np.abs(want).max() > 0
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got_times, want_times)
    np.testing.assert_array_equal(onnx_impl.get_scene_embeddings(audio, split),
                                  onnx_impl.get_scene_embeddings(audio, whole))


class Recorder:
    """Stands in for a session: records each run's rows and how many pieces had been taken when it ran."""

    def __init__(self, taken):
        self.taken, self.runs = taken, []

    def run(self, names, feeds):
        rows = feeds["x"]
        self.runs.append((rows[:, 0].tolist(), len(self.taken)))
        return [rows[:, :1, None] * np.ones((1, 1, 2), np.float32)]


def test_side_by_side_runs_cut_rows_evenly_keep_order_and_read_few_pieces_ahead():
    from hear_dual.onnx_impl import OnnxModel

    model = OnnxModel.__new__(OnnxModel)
    taken = []
    model.workers, model.input_name, model.output_name = 2, "x", "y"
    model.single = Recorder(taken)
    outs = [np.zeros((n, 1, 1, 2), np.float32) for n in (3, 1, 1, 1, 1, 1, 1, 2)]

    def pieces():
        for i, out in enumerate(outs):
            taken.append(i)
            yield np.arange(10 * i, 10 * i + len(out), dtype=np.float32)[:, None], out

    model.encode_all(pieces())
    for i, out in enumerate(outs):      # every row's output where it belongs
        np.testing.assert_array_equal(out[:, 0, 0, 0], np.arange(10 * i, 10 * i + len(out)))
    runs = sorted(model.single.runs)
    assert [r for r, _ in runs][:3] == [[0.0, 1.0], [2.0], [10.0]]            # 3 rows in runs of 2 and 1
    assert all(taken_when <= first // 10 + 3 for (first, *_), taken_when in model.single.runs)


def test_one_row_in_all_runs_on_every_thread_and_threads_1_or_split_false_never_split():
    from hear_dual import onnx_impl

    for model in onnx_impl.load_model("compact", threads=1), onnx_impl.load_model("compact", threads=2, split=False):
        assert model.workers == 1 and model.single is None
    model = onnx_impl.load_model("compact", threads=2)
    assert model.workers == 2
    model.single = None                 # a one-row call must not reach it
    embeddings, _ = onnx_impl.get_timestamp_embeddings(np.zeros((1, 8000), np.float32), model)
    assert embeddings.shape[0] == 1 and np.isfinite(embeddings).all()
