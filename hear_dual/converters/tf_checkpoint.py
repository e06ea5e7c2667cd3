"""TensorFlow tensor-bundle checkpoints (`<prefix>.index` + `<prefix>.data-NNNNN-of-MMMMM`) read without TensorFlow.

This is the V2 format that tf.compat.v1.train.Saver and tf.train.Checkpoint write. The reader uses only the
standard library and numpy, and it runs nothing from the files. Protobufs are decoded by hand from the wire
format, so no generated classes are needed.

    read_tf_checkpoint(prefix, names=None)  -> {name: np.ndarray}
    list_tf_checkpoint(prefix)              -> {name: (numpy dtype name, shape)}

`prefix` can be the checkpoint prefix, the `.index` file, or a directory that holds files named `.index` and
`.data-00000-of-00001` with nothing before the dot, as musicnn ships them.

Layout:
- `.index` is a LevelDB-style SSTable (tensorflow/core/lib/io/table). A 48-byte footer holds the metaindex and
  index BlockHandles and the magic number. Each block is followed by a trailer: 1 compression-type byte and a
  masked crc32c that covers the contents and the type byte. The index block maps keys to the data blocks. A data
  block maps a tensor name to a serialized BundleEntryProto. The empty key holds the BundleHeaderProto.
- A BundleEntryProto gives dtype, shape, shard, offset, size and the masked crc32c of the tensor bytes. Those
  bytes are stored raw and little-endian in the shard file.

Every problem raises TFCheckpointError (a ValueError). The message names the file and says what was expected
and what was found.

crc32c: the standard library has none. Measured on one core (CPython 3.11, numpy 2.4):
- a table-driven pure-Python byte loop runs at about 10 MB/s;
- the numpy version below runs at about 120 MB/s for 64 KiB, 270 MB/s for 1 MB and 350 MB/s for 10-100 MB. It
  cuts the data into equal chunks, about 50 times as many as each chunk has 4-byte words, and runs slicing-by-4
  over all the chunks together. Then it joins the chunk CRCs with the GF(2) "append n zero bytes" operator, as
  zlib's crc32_combine does.
Building that operator for a new chunk length costs about 0.5 ms, and the result is cached. So below 16 KiB the
byte loop is used instead. At these speeds every tensor's crc is checked by default. Reading all of MTT_musicnn
(9.5 MB in 150 tensors) takes about 60 ms with the checks and about 7 ms with verify_crc=False.
"""

from __future__ import annotations

import functools
import math
import os
import struct
from collections.abc import Iterable, Iterator
from typing import BinaryIO

import numpy as np

__all__ = ["TFCheckpointError", "crc32c", "list_tf_checkpoint", "mask_crc", "read_tf_checkpoint", "unmask_crc"]


class TFCheckpointError(ValueError):
    """A TensorFlow checkpoint that is missing, damaged or uses something this reader does not support."""


# ---------------------------------------------------------------------------------------------------- crc32c

_POLY = 0x82F63B78          # Castagnoli, reflected
_MASK_DELTA = 0xA282EAD8    # TF/LevelDB store crcs "masked" so that a crc of data holding crcs is not degenerate
_NUMPY_CRC_MIN = 16 * 1024  # below this the byte loop wins (a new chunk length costs ~0.5 ms of operator setup)


def _byte_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ _POLY if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _byte_table()


def _slicing_tables() -> tuple[np.ndarray, ...]:
    # _SLICE[k][b] = the effect of byte b followed by k zero bytes, so one step absorbs a 4-byte word
    tables = [np.array(_TABLE, dtype=np.uint32)]
    for _ in range(3):
        prev = tables[-1]
        tables.append((prev >> 8) ^ tables[0][prev & 0xFF])
    return tuple(tables)


_SLICE = _slicing_tables()


def _crc_update_bytes(reg: int, data: bytes | memoryview) -> int:
    """Advance the raw (unfinalised) CRC register over data, one byte at a time."""
    table = _TABLE
    for b in data:
        reg = table[(reg ^ b) & 0xFF] ^ (reg >> 8)
    return reg


def _gf2_times(columns: list[int], vec: int) -> int:
    """32x32 GF(2) matrix (as its 32 column words) times a 32-bit vector."""
    out, i = 0, 0
    while vec:
        if vec & 1:
            out ^= columns[i]
        vec >>= 1
        i += 1
    return out


def _zeros_operator(nbytes: int) -> list[int]:
    """Columns of the linear map 'raw register -> register after nbytes zero bytes', by repeated squaring."""
    op = [_TABLE[(1 << n) & 0xFF] ^ ((1 << n) >> 8) for n in range(32)]  # one zero byte
    result = [1 << n for n in range(32)]
    while nbytes:
        if nbytes & 1:
            result = [_gf2_times(op, c) for c in result]
        nbytes >>= 1
        if nbytes:
            op = [_gf2_times(op, c) for c in op]
    return result


@functools.lru_cache(maxsize=64)
def _zeros_byte_tables(nbytes: int) -> tuple[list[int], ...]:
    """_zeros_operator(nbytes) as four 256-entry tables, one lookup per register byte. Cached: building costs ~1 ms,
    and a checkpoint repeats tensor sizes (e.g. a weight and its optimizer slots)."""
    columns = _zeros_operator(nbytes)
    tables = []
    for j in range(4):
        t = [0] * 256
        for b in range(1, 256):
            low = b & -b
            t[b] = t[b ^ low] ^ columns[8 * j + low.bit_length() - 1]
        tables.append(t)
    return tuple(tables)


def _crc_update_numpy(reg: int, data: bytes | memoryview) -> tuple[int, int]:
    """Advance the register over a prefix of data made of equal chunks. Returns (register, bytes consumed)."""
    # The numpy loop runs chunk/4 times at ~20 us per step; the Python combine loop runs count times at ~0.4 us.
    # Balancing those gives ~50x more chunks than steps.
    chunk = 4 * max(1, int(math.sqrt(len(data) / 200)))
    count = len(data) // chunk
    words = np.frombuffer(data, dtype="<u4", count=count * chunk // 4).reshape(count, chunk // 4)
    rows = np.ascontiguousarray(words.T)                 # row i = word i of every chunk
    t0, t1, t2, t3 = _SLICE
    regs = np.zeros(count, dtype=np.uint32)              # each chunk's CRC from a zero register (linear in data)
    for row in rows:
        regs ^= row
        regs = t3[regs & 0xFF] ^ t2[(regs >> 8) & 0xFF] ^ t1[(regs >> 16) & 0xFF] ^ t0[regs >> 24]
    s0, s1, s2, s3 = _zeros_byte_tables(chunk)
    for part in regs.tolist():  # crc(A + B) = shift_len(B)(crc(A)) ^ crc0(B)
        reg = s0[reg & 0xFF] ^ s1[(reg >> 8) & 0xFF] ^ s2[(reg >> 16) & 0xFF] ^ s3[reg >> 24] ^ part
    return reg, count * chunk


def crc32c(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """CRC-32C (Castagnoli) of data, continuing from `crc` (the value for the data before it)."""
    view = memoryview(data).cast("B")
    reg, done = crc ^ 0xFFFFFFFF, 0
    if len(view) >= _NUMPY_CRC_MIN:
        reg, done = _crc_update_numpy(reg, view)
    return _crc_update_bytes(reg, view[done:]) ^ 0xFFFFFFFF


def unmask_crc(masked: int) -> int:
    rot = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


def mask_crc(crc: int) -> int:
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


# ------------------------------------------------------------------------------------- protobuf wire format


def _varint(buf: bytes, pos: int, where: str) -> tuple[int, int]:
    """Decode a varint at pos. Returns (value, next pos)."""
    value, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise TFCheckpointError(f"{where}: varint runs past the end of its {len(buf)}-byte buffer")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift >= 70:
            raise TFCheckpointError(f"{where}: varint longer than 10 bytes at offset {pos}")


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _proto_fields(buf: bytes, where: str) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) for each field. Varints and fixed32/64 give ints, wire type 2 bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos, where)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos, where)
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            if pos + width > len(buf):
                raise TFCheckpointError(f"{where}: field {field} needs {width} bytes, {len(buf) - pos} left")
            value = int.from_bytes(buf[pos:pos + width], "little")
            pos += width
        elif wire == 2:
            length, pos = _varint(buf, pos, where)
            if pos + length > len(buf):
                raise TFCheckpointError(f"{where}: field {field} claims {length} bytes, {len(buf) - pos} left")
            value = bytes(buf[pos:pos + length])
            pos += length
        else:  # groups (3, 4) are not used by any of these messages
            raise TFCheckpointError(f"{where}: unsupported protobuf wire type {wire} for field {field}")
        yield field, wire, value


def _expect_wire(where: str, field: int, wire: int, expected: int) -> None:
    if wire != expected:
        raise TFCheckpointError(f"{where}: field {field} has wire type {wire}, expected {expected}")


# --------------------------------------------------------------------------------------- SSTable (.index)

_FOOTER_SIZE = 48
_MAGIC = 0xDB4775248B80FB57
_TRAILER_SIZE = 5
_COMPRESSION = {0: "none", 1: "snappy", 2: "zlib"}


def _block_handle(buf: bytes, pos: int, where: str) -> tuple[int, int, int]:
    """BlockHandle = varint64 offset, varint64 size. Returns (offset, size, next pos)."""
    offset, pos = _varint(buf, pos, where)
    size, pos = _varint(buf, pos, where)
    return offset, size, pos


def _read_block(data: bytes, offset: int, size: int, where: str) -> bytes:
    """Contents of the block at (offset, size), after checking its trailer (compression type, crc)."""
    end = offset + size + _TRAILER_SIZE
    if end > len(data) - _FOOTER_SIZE:
        raise TFCheckpointError(f"{where}: block at offset {offset} with {size} bytes (+{_TRAILER_SIZE}-byte trailer) "
                                f"runs past the data area that ends at {len(data) - _FOOTER_SIZE}; truncated file?")
    contents_and_type = data[offset:offset + size + 1]
    kind = contents_and_type[-1]
    if kind != 0:
        name = _COMPRESSION.get(kind, "unknown")
        raise TFCheckpointError(f"{where}: block at offset {offset} has compression type {kind} ({name}); "
                                f"only uncompressed (0) blocks are supported, as TensorFlow writes them")
    (stored,) = struct.unpack_from("<I", data, offset + size + 1)
    actual = crc32c(contents_and_type)
    if unmask_crc(stored) != actual:
        raise TFCheckpointError(f"{where}: block at offset {offset} ({size} bytes) fails its crc32c check: "
                                f"trailer says {unmask_crc(stored):#010x}, contents give {actual:#010x}")
    return contents_and_type[:-1]


def _block_entries(block: bytes, where: str) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) pairs of a block. Keys are prefix-compressed against the previous key."""
    if len(block) < 4:
        raise TFCheckpointError(f"{where}: block of {len(block)} bytes is too short for its restart count")
    (num_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    limit = len(block) - 4 * (num_restarts + 1)  # the restart offsets only speed up seeks; a linear scan skips them
    if limit < 0:
        raise TFCheckpointError(f"{where}: block of {len(block)} bytes claims {num_restarts} restart points")
    pos, key = 0, b""
    while pos < limit:
        shared, pos = _varint(block, pos, where)
        unshared, pos = _varint(block, pos, where)
        value_len, pos = _varint(block, pos, where)
        if shared > len(key) or pos + unshared + value_len > limit:
            raise TFCheckpointError(f"{where}: corrupt block entry at offset {pos} (shares {shared} of a "
                                    f"{len(key)}-byte key, then {unshared}+{value_len} bytes, {limit - pos} left)")
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        yield key, block[pos:pos + value_len]
        pos += value_len


def _sstable_items(path: str) -> Iterator[tuple[bytes, bytes]]:
    """Every (key, value) of the SSTable at path, in key order."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise TFCheckpointError(f"{path}: cannot read the checkpoint index ({e.strerror})") from None
    if len(data) < _FOOTER_SIZE:
        raise TFCheckpointError(f"{path}: {len(data)} bytes, shorter than the {_FOOTER_SIZE}-byte SSTable footer; "
                                f"truncated or not a TensorFlow checkpoint index")
    footer = data[-_FOOTER_SIZE:]
    (magic,) = struct.unpack_from("<Q", footer, _FOOTER_SIZE - 8)
    if magic != _MAGIC:
        raise TFCheckpointError(f"{path}: bad SSTable magic number {magic:#018x}, expected {_MAGIC:#018x}; "
                                f"truncated or not a TensorFlow checkpoint index")
    _, _, pos = _block_handle(footer, 0, f"{path} (footer)")  # the metaindex block is unused by tensor bundles
    index_offset, index_size, _ = _block_handle(footer, pos, f"{path} (footer)")
    index = _read_block(data, index_offset, index_size, f"{path} (index block)")
    for _, handle in _block_entries(index, f"{path} (index block)"):
        offset, size, _ = _block_handle(handle, 0, f"{path} (index block)")
        yield from _block_entries(_read_block(data, offset, size, f"{path} (data block)"), f"{path} (data block)")


# ------------------------------------------------------------------------------------------ tensor bundle

# DataType enum value -> numpy dtype (little-endian, as bundles are written on every platform TF supports)
_NUMPY_DTYPES = {
    1: "<f4", 2: "<f8", 3: "<i4", 4: "u1", 5: "<i2", 6: "i1", 8: "<c8", 9: "<i8", 10: "?",
    17: "<u2", 18: "<c16", 19: "<f2", 22: "<u4", 23: "<u8",
}
# the names of the types that are refused, so the error can name them
_TF_DTYPE_NAMES = {
    7: "DT_STRING", 11: "DT_QINT8", 12: "DT_QUINT8", 13: "DT_QINT32", 14: "DT_BFLOAT16", 15: "DT_QINT16",
    16: "DT_QUINT16", 20: "DT_RESOURCE", 21: "DT_VARIANT",
}
_LITTLE_ENDIAN, _BIG_ENDIAN = 0, 1
_BUNDLE_VERSION = 1  # kTensorBundleVersion: this reader accepts bundles whose min_consumer is at most this


class _Entry:
    """The BundleEntryProto fields this reader uses."""

    __slots__ = ("dtype", "shape", "shard_id", "offset", "size", "crc", "sliced")

    def __init__(self) -> None:
        self.dtype, self.shape, self.shard_id, self.offset, self.size = 0, (), 0, 0, 0
        self.crc: int | None = None
        self.sliced = False


def _parse_shape(buf: bytes, where: str) -> tuple[int, ...]:
    dims = []
    for field, wire, value in _proto_fields(buf, where):
        if field == 2:  # Dim {1: size, 2: name}
            _expect_wire(where, field, wire, 2)
            size = 0
            for dim_field, dim_wire, dim_value in _proto_fields(value, where):
                if dim_field == 1:
                    _expect_wire(where, dim_field, dim_wire, 0)
                    size = _signed64(dim_value)
            if size < 0:
                raise TFCheckpointError(f"{where}: dimension {len(dims)} has unknown size {size}")
            dims.append(size)
        elif field == 3 and value:
            raise TFCheckpointError(f"{where}: shape has unknown rank")
    return tuple(dims)


def _parse_entry(buf: bytes, where: str) -> _Entry:
    entry = _Entry()
    for field, wire, value in _proto_fields(buf, where):
        if field == 1:
            _expect_wire(where, field, wire, 0)
            entry.dtype = value
        elif field == 2:
            _expect_wire(where, field, wire, 2)
            entry.shape = _parse_shape(value, where)
        elif field == 3:
            _expect_wire(where, field, wire, 0)
            entry.shard_id = _signed64(value)
        elif field == 4:
            _expect_wire(where, field, wire, 0)
            entry.offset = _signed64(value)
        elif field == 5:
            _expect_wire(where, field, wire, 0)
            entry.size = _signed64(value)
        elif field == 6:
            _expect_wire(where, field, wire, 5)
            entry.crc = value
        elif field == 7:
            entry.sliced = True
    return entry


def _parse_header(buf: bytes, where: str) -> int:
    """Check the BundleHeaderProto and return its number of shards."""
    num_shards, endianness, min_consumer = 0, _LITTLE_ENDIAN, 0
    for field, wire, value in _proto_fields(buf, where):
        if field == 1:
            num_shards = _signed64(value)
        elif field == 2:
            endianness = value
        elif field == 3 and wire == 2:  # VersionDef {1: producer, 2: min_consumer, 3: bad_consumers}
            for version_field, _, version_value in _proto_fields(value, where):
                if version_field == 2:
                    min_consumer = version_value
    if endianness == _BIG_ENDIAN:
        raise TFCheckpointError(f"{where}: the bundle is big-endian; only little-endian bundles are supported")
    if endianness != _LITTLE_ENDIAN:
        raise TFCheckpointError(f"{where}: unknown endianness {endianness}, expected 0 (little)")
    if min_consumer > _BUNDLE_VERSION:
        raise TFCheckpointError(f"{where}: bundle needs a reader of version >= {min_consumer}; this one is "
                                f"version {_BUNDLE_VERSION}")
    if num_shards < 1:
        raise TFCheckpointError(f"{where}: header says {num_shards} data shards, expected at least 1")
    return num_shards


def _resolve_prefix(prefix: str | os.PathLike) -> str:
    """The checkpoint prefix for a prefix, a `.index` path or a directory holding `.index` (empty basename)."""
    path = os.fspath(prefix)
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, ".index")):
            return os.path.join(path, "")
        found = sorted(name for name in os.listdir(path) if name.endswith(".index"))
        hint = f"; it holds {found[:5]}: pass {os.path.join(path, found[0])!r}" if found else ""
        raise TFCheckpointError(f"{path}: directory has no '.index' file{hint}")
    if path.endswith(".index"):
        if not os.path.isfile(path):
            raise TFCheckpointError(f"{path}: no such file")
        return path[:-len(".index")]
    if not os.path.isfile(path + ".index"):
        raise TFCheckpointError(f"{path}.index: no such file; expected a checkpoint prefix, a .index file or a "
                                f"directory holding '.index'")
    return path


def _read_index(prefix: str) -> tuple[int, dict[str, _Entry]]:
    """(number of shards, name -> entry) from `<prefix>.index`."""
    path = prefix + ".index"
    num_shards, entries = None, {}
    for key, value in _sstable_items(path):
        if key == b"":
            num_shards = _parse_header(value, f"{path} (bundle header)")
            continue
        if key.startswith(b"\x00"):  # TF's encoded keys of individual slices; only partitioned variables have them
            continue
        try:
            name = key.decode("utf-8")
        except UnicodeDecodeError:
            raise TFCheckpointError(f"{path}: tensor name {key[:80]!r} is not UTF-8") from None
        entries[name] = _parse_entry(value, f"{path} (entry {name!r})")
    if num_shards is None:
        raise TFCheckpointError(f"{path}: no bundle header (the entry with the empty key); not a tensor bundle")
    return num_shards, entries


def _numpy_dtype(name: str, entry: _Entry, path: str) -> np.dtype:
    if entry.dtype not in _NUMPY_DTYPES:
        tf_name = _TF_DTYPE_NAMES.get(entry.dtype, f"DataType {entry.dtype}")
        raise TFCheckpointError(f"{path}: tensor {name!r} has dtype {tf_name}, which this reader does not support "
                                f"(numeric and bool tensors only); pass names= to read the others")
    return np.dtype(_NUMPY_DTYPES[entry.dtype])


def _dtype_name(entry: _Entry) -> str:
    if entry.dtype in _NUMPY_DTYPES:
        return np.dtype(_NUMPY_DTYPES[entry.dtype]).newbyteorder("=").name
    return _TF_DTYPE_NAMES.get(entry.dtype, f"DT_{entry.dtype}")


def _shard_path(prefix: str, shard_id: int, num_shards: int) -> str:
    return f"{prefix}.data-{shard_id:05d}-of-{num_shards:05d}"


def _read_tensor(name: str, entry: _Entry, prefix: str, num_shards: int, files: dict[str, BinaryIO],
                 verify_crc: bool) -> np.ndarray:
    index_path = prefix + ".index"
    if entry.sliced:
        raise TFCheckpointError(f"{index_path}: tensor {name!r} is stored in slices (a partitioned variable); "
                                f"sliced tensors are not supported")
    dtype = _numpy_dtype(name, entry, index_path)
    expected = math.prod(entry.shape) * dtype.itemsize
    if entry.size != expected:
        raise TFCheckpointError(f"{index_path}: tensor {name!r} of shape {entry.shape} and dtype {dtype.name} needs "
                                f"{expected} bytes, but its entry says {entry.size}")
    if not 0 <= entry.shard_id < num_shards:
        raise TFCheckpointError(f"{index_path}: tensor {name!r} is in shard {entry.shard_id}, but the header says "
                                f"there are {num_shards}")
    path = _shard_path(prefix, entry.shard_id, num_shards)
    if path not in files:
        try:
            files[path] = open(path, "rb")  # closed by read_tf_checkpoint
        except OSError as e:
            raise TFCheckpointError(f"{path}: cannot open the data shard for tensor {name!r} ({e.strerror})") from None
    f = files[path]
    file_size = os.fstat(f.fileno()).st_size
    if entry.offset < 0 or entry.offset + entry.size > file_size:  # checked before allocating `size` bytes
        raise TFCheckpointError(f"{path}: tensor {name!r} needs bytes {entry.offset}..{entry.offset + entry.size}, "
                                f"but the file has only {file_size} bytes; truncated data shard?")
    buf = bytearray(entry.size)  # np.frombuffer over a bytearray gives a writable array without another copy
    f.seek(entry.offset)
    if f.readinto(buf) != entry.size:
        raise TFCheckpointError(f"{path}: short read of tensor {name!r} at offset {entry.offset}")
    if verify_crc and entry.crc is not None:
        actual = crc32c(buf)
        if unmask_crc(entry.crc) != actual:
            raise TFCheckpointError(f"{path}: tensor {name!r} fails its crc32c check: index says "
                                    f"{unmask_crc(entry.crc):#010x}, data gives {actual:#010x}")
    array = np.frombuffer(buf, dtype=dtype).reshape(entry.shape)
    return array.astype(dtype.newbyteorder("="), copy=False)


def list_tf_checkpoint(prefix: str | os.PathLike) -> dict[str, tuple[str, tuple[int, ...]]]:
    """name -> (numpy dtype name, shape) of every tensor, without reading the data shards.

    A type without a numpy equivalent is listed under its TF name, e.g. 'DT_STRING' or 'DT_BFLOAT16'. Those
    tensors are listed but cannot be read.
    """
    resolved = _resolve_prefix(prefix)
    _, entries = _read_index(resolved)
    return {name: (_dtype_name(entry), entry.shape) for name, entry in entries.items()}


def read_tf_checkpoint(prefix: str | os.PathLike, names: Iterable[str] | None = None, *,
                       verify_crc: bool = True) -> dict[str, np.ndarray]:
    """The tensors of a checkpoint as numpy arrays: all of them, or only `names`.

    verify_crc=False skips the per-tensor crc32c check. The index file's block checksums are always checked.
    """
    resolved = _resolve_prefix(prefix)
    num_shards, entries = _read_index(resolved)
    wanted = list(entries) if names is None else list(dict.fromkeys([names] if isinstance(names, str) else names))
    missing = [name for name in wanted if name not in entries]
    if missing:
        some = sorted(entries)[:10]
        more = f" (and {len(entries) - len(some)} more)" if len(entries) > len(some) else ""
        raise TFCheckpointError(f"{resolved}.index: no tensor named {missing[0]!r}"
                                f"{f' (nor {missing[1:]!r})' if len(missing) > 1 else ''}; it holds {some}{more}")
    files: dict[str, BinaryIO] = {}
    try:
        return {name: _read_tensor(name, entries[name], resolved, num_shards, files, verify_crc) for name in wanted}
    finally:
        for f in files.values():
            f.close()
