"""hear_dual.converters.tf_checkpoint: TF tensor bundles read without TensorFlow, checked against TensorFlow itself."""

from __future__ import annotations

import importlib.util
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hear_dual.converters import tf_checkpoint
from hear_dual.converters.tf_checkpoint import TFCheckpointError, crc32c, list_tf_checkpoint, read_tf_checkpoint

REPO = Path(__file__).resolve().parents[1]
OBJECT_GRAPH = "_CHECKPOINTABLE_OBJECT_GRAPH"  # tf.train.Checkpoint's DT_STRING entry

# name -> value; tf.train.Checkpoint stores them as "<name>/.ATTRIBUTES/VARIABLE_VALUE"
VALUES = {
    "f32_scalar": np.float32(1.5),
    "f64_vec": np.array([1.0, -2.5, np.pi]),
    "i32_cube": np.arange(24, dtype=np.int32).reshape(2, 3, 4) - 7,
    "i64_vec": np.array([-(2**40), 0, 2**62], dtype=np.int64),
    "f16_cube": np.linspace(-4, 4, 24, dtype=np.float16).reshape(2, 3, 4),
    "bool_vec": np.array([True, False, True]),
    "empty": np.zeros((0, 5), np.float32),
    "big": np.random.default_rng(0).standard_normal((300, 100)).astype(np.float32),  # > 16 KiB: numpy crc path
}


def variable_name(key: str) -> str:
    return f"{key}/.ATTRIBUTES/VARIABLE_VALUE"


@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def tf_prefix(tf, tmp_path_factory) -> str:
    """A checkpoint written by tf.train.Checkpoint, including a nested name 'layer/kernel/...'."""
    variables = {key: tf.Variable(value) for key, value in VALUES.items()}
    layer = tf.train.Checkpoint(kernel=tf.Variable(np.ones((2, 2), np.float32)))
    prefix = str(tmp_path_factory.mktemp("tf_ckpt") / "ckpt")
    return tf.train.Checkpoint(layer=layer, **variables).write(prefix)


def numeric_names(prefix: str) -> list[str]:
    return [name for name, (dtype, _) in list_tf_checkpoint(prefix).items() if not dtype.startswith("DT_")]


def copy_checkpoint(prefix: str, dest: Path) -> str:
    for suffix in (".index", ".data-00000-of-00001"):
        shutil.copy(prefix + suffix, str(dest / "ckpt") + suffix)
    return str(dest / "ckpt")


def flip_byte(path: str, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ 0x5A]))


# ------------------------------------------------------------------------------ against TensorFlow itself


def test_matches_tensorflow_bit_for_bit(tf, tf_prefix):
    reader = tf.train.load_checkpoint(tf_prefix)
    names = [name for name, _ in tf.train.list_variables(tf_prefix) if name != OBJECT_GRAPH]
    assert variable_name("big") in names and "layer/kernel/.ATTRIBUTES/VARIABLE_VALUE" in names
    ours = read_tf_checkpoint(tf_prefix, names)
    assert list(ours) == names
    for name in names:
        theirs = reader.get_tensor(name)
        assert ours[name].dtype == theirs.dtype and ours[name].shape == theirs.shape, name
        assert ours[name].tobytes() == theirs.tobytes(), name
    for key, value in VALUES.items():
        np.testing.assert_array_equal(ours[variable_name(key)], value)
    assert ours[variable_name("f32_scalar")].shape == ()
    assert ours[variable_name("big")].flags.writeable


def test_listing_matches_tensorflow(tf, tf_prefix):
    reader = tf.train.load_checkpoint(tf_prefix)
    shapes, dtypes = reader.get_variable_to_shape_map(), reader.get_variable_to_dtype_map()
    listing = list_tf_checkpoint(tf_prefix)
    assert set(listing) == set(shapes)
    for name, (dtype, shape) in listing.items():
        assert shape == tuple(shapes[name]), name
        expected = "DT_STRING" if dtypes[name] == tf.string else dtypes[name].as_numpy_dtype().dtype.name
        assert dtype == expected, name
    assert listing[variable_name("empty")] == ("float32", (0, 5))


def test_string_tensors_are_refused_by_name(tf_prefix):
    with pytest.raises(TFCheckpointError, match=f"'{OBJECT_GRAPH}' has dtype DT_STRING"):
        read_tf_checkpoint(tf_prefix)


def test_prefix_forms(tf_prefix, tmp_path):
    name = variable_name("i32_cube")
    expected = read_tf_checkpoint(tf_prefix, [name])[name]
    # musicnn's layout: files named '.index' and '.data-00000-of-00001' in a directory
    folder = tmp_path / "model"
    folder.mkdir()
    for suffix in (".index", ".data-00000-of-00001"):
        shutil.copy(tf_prefix + suffix, folder / suffix)
    for form in (tf_prefix, tf_prefix + ".index", Path(tf_prefix), folder, str(folder) + "/"):
        np.testing.assert_array_equal(read_tf_checkpoint(form, [name])[name], expected)
    with pytest.raises(TFCheckpointError, match="no such file"):
        read_tf_checkpoint(str(tmp_path / "nothing"))
    with pytest.raises(TFCheckpointError, match=r"has no '\.index' file; it holds \['ckpt\.index'\]"):
        read_tf_checkpoint(Path(tf_prefix).parent)  # a directory holding ckpt.index: the error names it
    with pytest.raises(TFCheckpointError, match=r"has no '\.index' file$"):
        read_tf_checkpoint(tmp_path)


def test_verify_crc_off_skips_only_the_tensor_check(tf_prefix, tmp_path):
    prefix = copy_checkpoint(tf_prefix, tmp_path)
    name = variable_name("big")
    _, entries = tf_checkpoint._read_index(prefix)
    flip_byte(prefix + ".data-00000-of-00001", entries[name].offset + 100)
    assert read_tf_checkpoint(prefix, [name], verify_crc=False)[name].shape == (300, 100)


def test_module_does_not_import_tensorflow(tf_prefix):
    code = ("import sys\n"
            "import hear_dual.converters.tf_checkpoint as m\n"
            "names = [n for n, (d, _) in m.list_tf_checkpoint(sys.argv[1]).items() if not d.startswith('DT_')]\n"
            "assert len(m.read_tf_checkpoint(sys.argv[1], names)) == len(names) > 5\n"
            "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n")
    done = subprocess.run([sys.executable, "-c", code, tf_prefix], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr


# ------------------------------------------------------------------------------------------------ musicnn


def musicnn_dir(model: str) -> Path:
    found = importlib.util.find_spec("musicnn")  # located without importing it (it imports TF1-era code)
    if found is None or not found.submodule_search_locations:
        pytest.skip("musicnn is not installed")
    folder = Path(next(iter(found.submodule_search_locations))) / model
    if not (folder / ".index").is_file():
        pytest.skip(f"musicnn has no {folder}/.index")
    return folder


@pytest.mark.parametrize("model, name, shape", [
    ("MTT_musicnn", "conv2d/kernel", (7, 38, 1, 204)),
    ("MTT_vgg", "1CNN/kernel", (3, 3, 1, 128)),
])
def test_musicnn_matches_tensorflow(tf, model, name, shape):
    folder = musicnn_dir(model)
    # load_checkpoint(folder) follows its `checkpoint` file to the author's machine; the prefix itself works
    reader = tf.compat.v1.train.NewCheckpointReader(str(folder) + "/")
    ours = read_tf_checkpoint(folder)
    assert set(ours) == set(reader.get_variable_to_shape_map())
    for tensor_name, array in ours.items():
        theirs = reader.get_tensor(tensor_name)
        assert array.dtype == theirs.dtype and array.shape == theirs.shape, tensor_name
        assert array.tobytes() == theirs.tobytes(), tensor_name
    assert list_tf_checkpoint(folder)[name] == ("float32", shape)


# ------------------------------------------------------------------------------------------------ damage


def test_truncated_index(tf_prefix, tmp_path):
    prefix = copy_checkpoint(tf_prefix, tmp_path)
    index = prefix + ".index"
    data = Path(index).read_bytes()
    Path(index).write_bytes(data[:-1])
    with pytest.raises(TFCheckpointError, match=r"ckpt\.index: bad SSTable magic number .*truncated"):
        list_tf_checkpoint(prefix)
    Path(index).write_bytes(data[:20])
    with pytest.raises(TFCheckpointError, match="20 bytes, shorter than the 48-byte SSTable footer"):
        list_tf_checkpoint(prefix)


def test_bad_magic(tf_prefix, tmp_path):
    prefix = copy_checkpoint(tf_prefix, tmp_path)
    flip_byte(prefix + ".index", os.path.getsize(prefix + ".index") - 3)
    with pytest.raises(TFCheckpointError, match="bad SSTable magic number .* expected 0xdb4775248b80fb57"):
        read_tf_checkpoint(prefix)


def test_flipped_byte_in_an_index_block(tf_prefix, tmp_path):
    prefix = copy_checkpoint(tf_prefix, tmp_path)
    flip_byte(prefix + ".index", 5)  # the first data block starts the file
    with pytest.raises(TFCheckpointError, match=r"ckpt\.index \(data block\): block at offset 0 .* crc32c check"):
        list_tf_checkpoint(prefix)


def test_flipped_byte_in_tensor_data(tf_prefix, tmp_path):
    prefix = copy_checkpoint(tf_prefix, tmp_path)
    _, entries = tf_checkpoint._read_index(prefix)
    for key, at in (("big", 1000), ("f64_vec", 3)):  # the numpy and the byte-loop crc paths
        name = variable_name(key)
        flip_byte(prefix + ".data-00000-of-00001", entries[name].offset + at)
        with pytest.raises(TFCheckpointError, match=rf"data-00000-of-00001: tensor '{name}' fails its crc32c check"):
            read_tf_checkpoint(prefix, [name])


def test_missing_and_truncated_data_shard(tf_prefix, tmp_path):
    prefix = copy_checkpoint(tf_prefix, tmp_path)
    names = numeric_names(prefix)
    shard = prefix + ".data-00000-of-00001"
    data = Path(shard).read_bytes()
    Path(shard).write_bytes(data[: len(data) // 2])
    with pytest.raises(TFCheckpointError, match=r"needs bytes 0\.\.120000, but the file has only \d+ bytes; truncated"):
        read_tf_checkpoint(prefix, names)
    os.remove(shard)
    assert len(list_tf_checkpoint(prefix)) == len(names) + 1  # listing needs no data
    with pytest.raises(TFCheckpointError, match=r"ckpt\.data-00000-of-00001: cannot open the data shard"):
        read_tf_checkpoint(prefix, names)


def test_unknown_name_lists_what_is_there(tf_prefix):
    with pytest.raises(TFCheckpointError, match=r"no tensor named 'nope'.*it holds \[.*f32_scalar/\.ATTRIBUTES"):
        read_tf_checkpoint(tf_prefix, ["nope", variable_name("f32_scalar")])


# ---------------------------------------------------------------- hand-written bundles: what TF will not write


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        out.append((value & 0x7F) | (0x80 if value > 0x7F else 0))
        value >>= 7
        if not value:
            return bytes(out)


def _field(number: int, value: int | bytes) -> bytes:
    if isinstance(value, bytes):
        return _varint(number << 3 | 2) + _varint(len(value)) + value
    return _varint(number << 3) + _varint(value)


def _entry(dtype: int, shape: tuple[int, ...], data: bytes, *, size: int | None = None, sliced: bool = False) -> bytes:
    dims = b"".join(_field(2, _field(1, d)) for d in shape)
    crc = struct.pack("<BI", 6 << 3 | 5, tf_checkpoint.mask_crc(crc32c(data)))
    proto = _field(1, dtype) + _field(2, dims) + _field(4, 0) + _field(5, len(data) if size is None else size) + crc
    return proto + (_field(7, _field(1, b"")) if sliced else b"")


def _header(endianness: int = 0) -> bytes:
    return _field(1, 1) + _field(2, endianness) + _field(3, _field(1, 1))


def write_bundle(prefix: Path, entries: dict[bytes, bytes], data: bytes, compression: int = 0) -> str:
    """An SSTable in TF's layout: one data block (no key sharing), an empty metaindex block, the index block."""
    out = bytearray()

    def put(items: list[tuple[bytes, bytes]]) -> bytes:
        body = b"".join(_varint(0) + _varint(len(k)) + _varint(len(v)) + k + v for k, v in items)
        block = body + struct.pack("<II", 0, 1) + bytes([compression])
        handle = _varint(len(out)) + _varint(len(block) - 1)
        out.extend(block + struct.pack("<I", tf_checkpoint.mask_crc(crc32c(block))))
        return handle

    data_handle = put(sorted(entries.items()))
    footer = put([]) + put([(b"\xff", data_handle)])
    out.extend(footer + bytes(40 - len(footer)) + struct.pack("<Q", 0xDB4775248B80FB57))
    Path(f"{prefix}.index").write_bytes(bytes(out))
    Path(f"{prefix}.data-00000-of-00001").write_bytes(data)
    return str(prefix)


def test_hand_written_bundle_reads(tmp_path):
    value = np.arange(-6, 6, dtype=np.int16).reshape(3, 4)
    prefix = write_bundle(tmp_path / "b", {b"": _header(), b"x": _entry(5, (3, 4), value.tobytes())}, value.tobytes())
    assert list_tf_checkpoint(prefix) == {"x": ("int16", (3, 4))}
    np.testing.assert_array_equal(read_tf_checkpoint(prefix)["x"], value)


@pytest.mark.parametrize("case, message", [
    ("big_endian", "the bundle is big-endian; only little-endian"),
    ("no_header", "no bundle header"),
    ("snappy", r"compression type 1 \(snappy\); only uncompressed"),
    ("sliced", "tensor 'x' is stored in slices"),
    ("bfloat16", "tensor 'x' has dtype DT_BFLOAT16"),
    ("size", r"tensor 'x' of shape \(3,\) and dtype float32 needs 12 bytes, but its entry says 8"),
])
def test_hand_written_refusals(tmp_path, case, message):
    data = np.ones(3, np.float32).tobytes()
    entries = {b"": _header(1 if case == "big_endian" else 0)}
    entries[b"x"] = _entry(14 if case == "bfloat16" else 1, (3,), data, size=8 if case == "size" else None,
                           sliced=case == "sliced")
    if case == "no_header":
        del entries[b""]
    prefix = write_bundle(tmp_path / "b", entries, data, compression=1 if case == "snappy" else 0)
    with pytest.raises(TFCheckpointError, match=message):
        read_tf_checkpoint(prefix)


# ------------------------------------------------------------------------------------------------- crc32c


def bitwise_crc32c(data: bytes) -> int:
    """The definition, one bit at a time: independent of the module's tables and operators."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def test_crc32c_known_vectors():
    assert crc32c(b"") == 0
    assert crc32c(b"123456789") == 0xE3069283
    # RFC 3720 (iSCSI) B.4
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c(bytes(range(32))) == 0x46DD794E
    assert crc32c(bytes(range(31, -1, -1))) == 0x113FDB5C
    assert tf_checkpoint.unmask_crc(tf_checkpoint.mask_crc(0xE3069283)) == 0xE3069283


@pytest.mark.parametrize("size", [16383, 16384, 16387, 40001])
def test_crc32c_numpy_path_matches_the_definition(size):
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    assert crc32c(data) == bitwise_crc32c(data)
    assert crc32c(data[7000:], crc32c(data[:7000])) == crc32c(data)  # continuation


def test_crc32c_large_matches_the_byte_loop():
    data = np.random.default_rng(1).integers(0, 256, 1 << 20, dtype=np.uint8).tobytes()
    crc = 0
    for start in range(0, len(data), 8192):  # pieces under the numpy threshold take the byte loop
        crc = crc32c(data[start:start + 8192], crc)
    assert crc32c(data) == crc
    assert crc32c(bytearray(data)) == crc32c(memoryview(data)) == crc
