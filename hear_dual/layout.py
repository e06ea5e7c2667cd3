"""Weight layouts: the one place where canonical tensors (ONNX, torch, checkpoints: dense OI, conv1d OIW, conv2d OIHW)
become TensorFlow's channels-last ones (dense IO, conv1d WIO, conv2d HWIO, where kernel[k] or kernel[p, q] is one
tap's matmul operand), and back. No framework is imported here: tf_impl, the ONNX graph builder and the converters
of TF checkpoints all use these two functions, and nothing else converts a layout.
"""

from __future__ import annotations

import numpy as np

# canonical axes -> TF axes, by rank of a `.weight`; every other tensor has one layout everywhere
TF_AXES = {2: (1, 0), 3: (2, 1, 0), 4: (2, 3, 1, 0)}


def to_tf_layout(name: str, array: np.ndarray) -> np.ndarray:
    if name.endswith(".weight") and array.ndim in TF_AXES:
        return np.ascontiguousarray(np.transpose(array, TF_AXES[array.ndim]))
    return array


def from_tf_layout(name: str, array: np.ndarray) -> np.ndarray:
    """The inverse of to_tf_layout: a TF layout (a TF checkpoint's, a tf.Variable's) back to the canonical one."""
    if name.endswith(".weight") and array.ndim in TF_AXES:
        return np.ascontiguousarray(np.transpose(array, np.argsort(TF_AXES[array.ndim])))
    return array
