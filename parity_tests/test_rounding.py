"""Each backend's float32 convolution against the float64 reference, on shapes where a framework's default
kernel rounds several times worse on some instruction sets (SPEC section 4, "Rounding"). Trained weights
amplify that difference past the parity tolerance, so these bounds guard it layer by layer. The same check
runs in every CPU personality (parity_tests/test_portability.py), so the bound holds on each ISA, not one."""

import numpy as np
import pytest

from hear_dual.portability import CONV2D_CASES, CONV_CASES, MAX_CONV_ROUNDING, backend_conv1d, backend_conv2d, conv_case
from hear_dual.reference import conv1d as reference_conv1d
from hear_dual.reference import conv2d as reference_conv2d
from hear_dual.spec import Spec


def relative_error(got, want) -> float:
    return float(np.abs(got - want).max() / np.abs(want).max())


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("batch, frames, cin, cout, k, stride, dilation", CONV_CASES)
def test_conv1d_rounds_like_a_float64_reference(backend, batch, frames, cin, cout, k, stride, dilation):
    x, w, b = conv_case(batch, frames, cin, cout, k)
    got = backend_conv1d(backend, x, w, b, stride, dilation)
    assert relative_error(got, reference_conv1d(x.astype(np.float64), w, b, stride, dilation)) <= MAX_CONV_ROUNDING


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("batch, time, freq, cin, cout, k, stride, padding", CONV2D_CASES)
def test_conv2d_rounds_like_a_float64_reference(backend, batch, time, freq, cin, cout, k, stride, padding):
    x, w, b = conv_case(batch, time, cin, cout, k, freq=freq)
    got = backend_conv2d(backend, x, w, b, stride, padding)
    assert relative_error(got, reference_conv2d(x.astype(np.float64), w, b, stride, padding)) <= MAX_CONV_ROUNDING


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("kernel", [(5,), (11,), (64,), (3, 4)])
def test_taps_are_added_in_tap_order(backend, kernel):
    """Taps whose products are 2^24, then ones, then -2^24: added in tap order in float32, as the spec says (SPEC
    section 4), every 1 is lost next to 2^24 and the sum is exactly 0; an order that adds -2^24 sooner, or some ones
    among themselves first, keeps some ones. TF's AddN adds inputs past the ninth in eights, and Grappler sorts its
    inputs by name (tf_impl's sum_of_taps): with one AddN and TF's own names, 11 taps summed to 7 (64 as CREPE's)."""
    values = np.ones(int(np.prod(kernel)), np.float32)
    values[0], values[-1] = 2.0**24, -(2.0**24)
    assert np.cumsum(values, dtype=np.float32)[-1] == 0 and values.sum(dtype=np.float64) == len(values) - 2
    w = np.zeros((1, 2, *kernel), np.float32)          # two input channels: the per-tap path, not the gathered one
    w[0, 0] = values.reshape(kernel)
    x, b = np.ones((1, 2, *kernel), np.float32), np.zeros(1, np.float32)
    if len(kernel) == 1:
        got = backend_conv1d(backend, x, w, b, 1, 1)
    else:
        got = backend_conv2d(backend, x, w, b, [1, 1], [[0, 0], [0, 0]])
    assert got.shape == (1, 1) + (1,) * len(kernel) and got.item() == 0.0


def test_conv2d_cases_are_musicnn_and_vgg_layers():
    layers = {(layer.in_channels, layer.out_channels, tuple(layer.kernel_size), tuple(map(tuple, layer.padding)))
              for name in ("hear-dual-musicnn-mtt", "hear-dual-vgg-mtt") for layer in Spec.builtin(name).layers
              if layer.op == "conv2d"}
    assert {(cin, cout, k, padding) for _, _, _, cin, cout, k, _, padding in CONV2D_CASES} <= layers


def test_the_bound_catches_a_single_long_float32_sum():
    """The bound is tight enough to fail the rounding it exists to exclude: all kernel x channel terms of a
    layer summed in one float32 pass (TF's CPU convolution, SPEC section 4)."""
    x, w, b = conv_case(1, 400, 384, 384, 3)
    want = reference_conv1d(x.astype(np.float64), w, b, 1, 1)
    sequential = np.zeros(want.shape, np.float32)
    for i in range(384 * 3):             # one running float32 sum over 1152 terms, in order
        k, c = divmod(i, 384)
        sequential += w[None, :, c, k, None] * x[:, None, c, k : k + 398]
    assert relative_error(sequential + b[None, :, None], want) > MAX_CONV_ROUNDING


def test_cases_are_hear_dual_base_layers():
    """The shapes above are the base model's, so the bounds speak for the shipped architecture."""
    convs = {(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.dilation)
             for layer in Spec.builtin("hear-dual-base").layers if layer.op == "conv1d"}
    assert {(cin, cout, k, s, d) for _, _, cin, cout, k, s, d in CONV_CASES} <= convs
