"""Thread defaults: every backend uses the machine unless the user caps it, and onnx_impl follows the cap that
torch and TensorFlow read (OMP_NUM_THREADS) or its own threads= argument."""

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
