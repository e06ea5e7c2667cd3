"""Golden embeddings (hear_dual/checkpoints/golden.npz): the float64 reference's outputs on every shipped
checkpoint. Every backend must meet the spec's gate against them on any machine, timestamps identical, with
the default chunking and with chunks of 7 timestamps; the file itself must reproduce within 1e-10."""

import pytest

import hear_dual.checkpoints
from hear_dual.checkpoint import read_checkpoint
from hear_dual.golden import (
    CASES,
    CHECKPOINT_CASES,
    CHUNKED,
    GOLDEN_RTOL,
    check_backend,
    compute_golden,
    golden_input,
    input_digest,
    load_golden,
    reproduction_error,
)
from hear_dual.portability import load_backend

needs_fsdd = pytest.mark.skipif(golden_input("fsdd-0_jackson_0") is None,
                                reason="FSDD not found at ../shared/data/fsdd (set HEAR_DUAL_FSDD)")


@pytest.fixture(scope="module")
def golden():
    return load_golden()


def test_golden_covers_every_shipped_checkpoint_as_shipped(golden):
    assert set(CHECKPOINT_CASES) == set(hear_dual.checkpoints.available())
    for name in CHECKPOINT_CASES:
        assert str(golden[f"{name}/checkpoint_sha256"]) == read_checkpoint(hear_dual.checkpoints.path(name)).sha256, \
            f"{name} changed since the golden file was written: run python -m hear_dual.golden"
    assert any(golden_input(c) is not None and golden_input(c).size < 480 for c in CASES)   # shorter than a frame


def test_inputs_are_the_same_bits_on_this_machine(golden):
    for case in CASES:
        audio = golden_input(case)
        if audio is not None:
            assert input_digest(audio) == str(golden[f"input/{case}"]), case


@needs_fsdd
def test_golden_file_reproduces_here(golden):
    assert reproduction_error(golden, compute_golden()) <= GOLDEN_RTOL


def test_reproduction_check_notices_a_change(golden):
    changed = dict(golden)
    key = "base/chirp-2.74s/embeddings"
    changed[key] = golden[key] * (1 + 1e-9)
    assert reproduction_error(golden, changed) > GOLDEN_RTOL


@pytest.mark.parametrize("checkpoint", list(CHECKPOINT_CASES))
@pytest.mark.parametrize("backend", ["torch", "tf", "onnx"])
def test_backend_meets_the_golden_gate(backend, checkpoint, golden):
    module, model = load_backend(backend, hear_dual.checkpoints.path(checkpoint))
    rows = check_backend(module, model, checkpoint, golden) + check_backend(module, model, checkpoint, golden, CHUNKED)
    assert rows and all(r["passed"] for r in rows), [r for r in rows if not r["passed"]]
    assert {r["case"] for r in rows} == {c for c in CHECKPOINT_CASES[checkpoint] if golden_input(c) is not None}


def test_tf2onnx_graph_meets_the_golden_gate(tf2onnx_graph, golden):
    import hear_dual.onnx_impl as module
    from hear_dual.tf_export import load_tf2onnx_model

    model = load_tf2onnx_model(tf2onnx_graph)
    rows = check_backend(module, model, "base", golden) + check_backend(module, model, "base", golden, CHUNKED)
    assert rows and all(r["passed"] for r in rows), [r for r in rows if not r["passed"]]


def test_the_golden_gate_catches_a_drifted_backend(golden):
    """tanh-GELU in place of erf-GELU (the smallest real drift in shared/notes/parity.md) must fail it."""
    import hear_dual.torch_impl as module

    model = module.load_model()
    for name in model.layer_names:
        if hasattr(getattr(model, name), "approximate"):
            getattr(model, name).approximate = "tanh"
    rows = check_backend(module, model, "base", golden)
    assert not any(r["passed"] for r in rows if r["case"] != "silence-400")
