"""Every bad checkpoint gives one CheckpointError (a ValueError) naming the file and the problem;
nothing in a checkpoint is ever executed; a fuzzed file is either a working model or a CheckpointError."""

import json
import os
import pickle

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import helper, numpy_helper

from hear_dual.checkpoint import META_SPEC, META_SPEC_SHA256, CheckpointError, read_checkpoint
from hear_dual.checkpoints import shipped_path
from hear_dual.inputs import NonFiniteEmbeddingError
from hear_dual.spec import spec_sha256

LOADERS = ["torch", "tf", "onnx"]


def loader(name):
    if name == "torch":
        import hear_dual.torch_impl as m
    elif name == "tf":
        import hear_dual.tf_impl as m
    else:
        import hear_dual.onnx_impl as m
    return m


@pytest.fixture(scope="module")
def good_bytes():
    with open(shipped_path(), "rb") as f:
        return f.read()


def edited(tmp_path, edit, name="edited.onnx"):
    graph = onnx.load(shipped_path())
    edit(graph)
    path = tmp_path / name
    onnx.save(graph, path)
    return path


def set_meta(graph, key, value):
    for prop in graph.metadata_props:
        if prop.key == key:
            prop.value = value


def edit_spec(edit):
    def apply(graph):
        meta = {p.key: p.value for p in graph.metadata_props}
        raw = json.loads(meta[META_SPEC])
        edit(raw)
        set_meta(graph, META_SPEC, json.dumps(raw))
        set_meta(graph, META_SPEC_SHA256, spec_sha256(raw))
    return apply


def replace_initializer(name, array):
    def apply(graph):
        init = next(i for i in graph.graph.initializer if i.name == name)
        init.CopyFrom(numpy_helper.from_array(array, name))
    return apply


def drop_initializer(name):
    def apply(graph):
        keep = [i for i in graph.graph.initializer if i.name != name]
        del graph.graph.initializer[:]
        graph.graph.initializer.extend(keep)
    return apply


def add_initializer(name, array):
    def apply(graph):
        graph.graph.initializer.append(numpy_helper.from_array(array, name))
    return apply


def poison_weight(graph):
    init = next(i for i in graph.graph.initializer if i.name == "conv1.weight")
    array = numpy_helper.to_array(init).copy()
    array[0, 0, 0] = np.nan
    init.CopyFrom(numpy_helper.from_array(array, init.name))


BAD_EDITS = {
    "no hear-dual metadata": (lambda g: g.metadata_props.__delitem__(slice(None)), "not a hear-dual checkpoint"),
    "invalid embedded spec": (edit_spec(lambda raw: raw["frontend"].update(window="hamming")), "embedded spec"),
    "unsupported spec version": (edit_spec(lambda raw: raw.update(spec_version="2.0")), "spec_version"),
    "spec hash mismatch": (lambda g: set_meta(g, META_SPEC_SHA256, "0" * 64), "hash"),
    "missing parameter": (drop_initializer("norm2.running_var"), "missing parameters"),
    "extra parameter": (add_initializer("conv9.weight", np.zeros((3, 3, 3), np.float32)), "unexpected"),
    "wrong shape": (replace_initializer("conv0.bias", np.zeros(127, np.float32)), "shape"),
    "wrong type": (replace_initializer("conv0.bias", np.zeros(128, np.float64)), "DOUBLE"),
    "non-finite weight": (poison_weight, "non-finite"),
    "frontend differs": (replace_initializer("frontend.mel", np.zeros((241, 64), np.float64)), "frontend.mel"),
    "frontend entry off by 1e-9": (lambda g: nudge_constant(g, "frontend.mel", 1 + 1e-9), "frontend.mel"),
    "dft entry off by 1e-11": (lambda g: nudge_constant(g, "frontend.dft", 1 + 1e-11), "frontend.dft"),
    "frontend stored as float32": (lambda g: round_constant(g, "frontend.mel"), "FLOAT"),
}


def stored_constant(graph, name):
    init = next(i for i in graph.graph.initializer if i.name == name)
    return init, numpy_helper.to_array(init).copy()


def nudge_constant(graph, name, factor):
    """Scale the constant's largest entry: a change no CPU's rounding makes, far below float32 resolution."""
    init, array = stored_constant(graph, name)
    array.flat[np.abs(array).argmax()] *= factor
    init.CopyFrom(numpy_helper.from_array(array, name))


def round_constant(graph, name):
    init, array = stored_constant(graph, name)
    init.CopyFrom(numpy_helper.from_array(array.astype(np.float32), name))


def ulp_noise(graph, name, ulps=4, seed=0):
    """What another CPU's numpy writes: every entry moved by up to a few float64 ulp."""
    init, array = stored_constant(graph, name)
    steps = np.random.default_rng(seed).integers(-ulps, ulps + 1, array.shape)
    for step in range(1, ulps + 1):
        array = np.where(np.abs(steps) >= step, np.nextafter(array, np.where(steps > 0, np.inf, -np.inf)), array)
    init.CopyFrom(numpy_helper.from_array(array, name))
    return array


@pytest.mark.parametrize("backend", LOADERS)
def test_constants_written_on_another_cpu_load_and_are_used_as_stored(backend, tmp_path):
    """SPEC section 7: a stored constant within rounding of this CPU's recomputation loads, and every backend
    multiplies by the stored bits (not by a recomputation), so backends in one process agree bit for bit."""
    stored = {}

    def noisy(graph):
        for name in ("frontend.mel", "frontend.dft"):
            stored[name] = ulp_noise(graph, name)
    path = edited(tmp_path, noisy)
    checkpoint = read_checkpoint(path)
    from hear_dual.audio import frontend_constants

    for name, array in stored.items():
        assert np.array_equal(checkpoint.constants[name], array)
        assert not np.array_equal(array, frontend_constants(checkpoint.spec)[name])
    model = loader(backend).load_model(str(path))
    if backend == "torch":
        assert np.array_equal(model.frontend.mel.numpy(), stored["frontend.mel"])
        assert np.array_equal(model.frontend.dft.numpy(), stored["frontend.dft"])
    elif backend == "tf":
        assert np.array_equal(model.frontend.mel.numpy(), stored["frontend.mel"])
        assert np.array_equal(model.frontend.dft_odd.numpy(), stored["frontend.dft"][1:241, 241:])


@pytest.mark.parametrize("case", BAD_EDITS)
def test_bad_checkpoints_are_rejected_by_name(case, tmp_path):
    edit, message = BAD_EDITS[case]
    path = edited(tmp_path, edit)
    with pytest.raises(CheckpointError, match=message) as info:
        read_checkpoint(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("backend", LOADERS)
def test_every_backend_raises_the_same_error(backend, tmp_path):
    path = edited(tmp_path, BAD_EDITS["missing parameter"][0])
    with pytest.raises(CheckpointError, match="missing parameters"):
        loader(backend).load_model(str(path))
    with pytest.raises(FileNotFoundError):
        loader(backend).load_model(str(tmp_path / "absent.onnx"))


def test_not_a_file(tmp_path):
    with pytest.raises(CheckpointError, match="not a regular file"):
        read_checkpoint(tmp_path)


def test_empty_truncated_random_and_foreign_files(tmp_path, good_bytes):
    cases = {
        "empty.onnx": b"",
        "truncated.onnx": good_bytes[: len(good_bytes) // 3],
        "random.onnx": np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(CheckpointError) as info:
            read_checkpoint(tmp_path / name)
        assert name in str(info.value)
    foreign = helper.make_model(helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])]))
    onnx.save(foreign, tmp_path / "foreign.onnx")
    with pytest.raises(CheckpointError, match="not a hear-dual checkpoint"):
        read_checkpoint(tmp_path / "foreign.onnx")


class _Exploit:
    def __reduce__(self):
        return (os.mkdir, (os.environ["HEAR_DUAL_PWNED"],))


def test_a_pickle_renamed_onnx_is_rejected_and_never_executed(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("HEAR_DUAL_PWNED", str(marker))
    path = tmp_path / "evil.onnx"
    path.write_bytes(pickle.dumps(_Exploit()))
    for backend in LOADERS:
        with pytest.raises(CheckpointError):
            loader(backend).load_model(str(path))
    assert not marker.exists()


def test_external_data_is_refused(tmp_path):
    def externalise(graph):
        init = next(i for i in graph.graph.initializer if i.name == "conv0.bias")
        init.data_location = onnx.TensorProto.EXTERNAL
        init.ClearField("raw_data")
        init.external_data.add(key="location", value="/etc/passwd")
    path = edited(tmp_path, externalise)
    with pytest.raises(CheckpointError, match="external data"):
        read_checkpoint(path)


@pytest.mark.parametrize("backend", LOADERS)
def test_weights_that_overflow_raise_a_clear_error_instead_of_nan(backend, tmp_path):
    """A damaged checkpoint can load: every value finite, one absurdly large (a flipped exponent bit makes a weight
    1.3e38). Its embeddings overflow float32, and every backend says so, naming the checkpoint, instead of
    returning NaN; the scene path too."""
    def overflow(graph):
        init = next(i for i in graph.graph.initializer if i.name == "conv4.weight")
        array = numpy_helper.to_array(init).copy()
        array.flat[0] = 1.3e38
        init.CopyFrom(numpy_helper.from_array(array, init.name))
    path = edited(tmp_path, overflow)
    module = loader(backend)
    model = module.load_model(str(path))
    audio = (np.random.default_rng(0).standard_normal((2, 8000)) * 0.1).astype(np.float32)
    with pytest.raises(NonFiniteEmbeddingError, match=r"sound\(s\) [0-9, ]+ hold NaN or infinity although") as info:
        module.get_timestamp_embeddings(audio, model)
    assert str(path) in str(info.value)
    with pytest.raises(NonFiniteEmbeddingError):
        module.get_scene_embeddings(audio, model)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_checkpoints_load_and_work_or_raise_a_clear_error(data, good_bytes, tmp_path):
    raw = bytearray(good_bytes)
    for _ in range(data.draw(st.integers(1, 8), label="mutations")):
        position = data.draw(st.integers(0, len(raw) - 1), label="position")
        raw[position] = data.draw(st.integers(0, 255), label="byte")
    if data.draw(st.booleans(), label="truncate"):
        raw = raw[: data.draw(st.integers(0, len(raw)), label="length")]
    path = tmp_path / "fuzzed.onnx"
    path.write_bytes(bytes(raw))
    backend = loader(data.draw(st.sampled_from(["torch", "onnx"]), label="backend"))
    try:
        model = backend.load_model(str(path))
    except CheckpointError:
        return
    try:
        # noise, not silence: an all-zero clip's frames are all silent, and its frontend would run no DFT at all
        audio = (np.random.default_rng(0).standard_normal((1, 4000)) * 0.1).astype(np.float32)
        embeddings, _ = backend.get_timestamp_embeddings(audio, model)
    except NonFiniteEmbeddingError as e:     # finite weights that overflow: said, never returned as NaN
        assert str(path) in str(e)
        return
    embeddings = np.asarray(embeddings)
    assert embeddings.shape == (1, 7, 512) and np.isfinite(embeddings).all()
