import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from hear_dual.spec import Spec  # noqa: E402


@pytest.fixture(scope="session")
def spec():
    return Spec.builtin("hear-dual-base")


@pytest.fixture(scope="session")
def torch_model():
    import hear_dual.torch_impl as backend

    return backend.load_model()


@pytest.fixture(scope="session")
def tf_model():
    import hear_dual.tf_impl as backend

    return backend.load_model()


@pytest.fixture(scope="session")
def onnx_model():
    import hear_dual.onnx_impl as backend

    return backend.load_model()


@pytest.fixture(scope="session")
def backends(torch_model, tf_model, onnx_model):
    """name -> (module, loaded model) for every backend of the HEAR API."""
    import hear_dual.onnx_impl as onnx_backend
    import hear_dual.tf_impl as tf_backend
    import hear_dual.torch_impl as torch_backend

    return {"torch": (torch_backend, torch_model), "tf": (tf_backend, tf_model), "onnx": (onnx_backend, onnx_model)}


@pytest.fixture
def rng():
    return np.random.default_rng(0)
