"""Parity must also hold with TensorFlow's oneDNN ops off (set before TF is imported: a subprocess)."""

import json
import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_torch_vs_tf_with_onednn_off(tmp_path):
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="0", HEAR_DUAL_VERBOSE="1")    # verbose: TF's banner would show
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    run = subprocess.run([sys.executable, "-m", "hear_dual.cli", "parity", "--backends", "torch,tf", "--quick",
                          "--no-speech", "--json"], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=900)
    assert "oneDNN custom operations are on" not in run.stderr
    report = json.loads(run.stdout)
    assert report["passed"], [r for r in report["summary"] if not r["passed"]]
    assert report["meta"]["settings"]["TF_ENABLE_ONEDNN_OPTS"] == "0"
    assert len(report["rows"]) >= 11 * 2 * 2
