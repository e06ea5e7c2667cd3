"""onnx_impl's thread default: ONNX Runtime's own (one thread per physical core) unless the user caps OpenMP with
OMP_NUM_THREADS, as torch and TensorFlow read it, or passes threads=. (torch and TensorFlow read the variable
themselves.)"""

import os
import subprocess
import sys

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
