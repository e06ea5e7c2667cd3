"""Load, validate and describe a hear-dual architecture spec (spec/SPEC.md is normative).

Everything a backend needs to know about a model variant is derived here, once, in plain Python:
parameter names and canonical shapes, strides, receptive field, padding, FLOPs. Backends never
re-derive these their own way.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from dataclasses import dataclass
from functools import cached_property, lru_cache
from importlib import resources

import jsonschema

from hear_dual.dsp import mel_filterbank

SUPPORTED_SPEC_VERSIONS = ("1.0", "1.1", "1.2", "1.3")
BUILTIN_VARIANTS = ("hear-dual-base", "hear-dual-compact", "hear-dual-randproj", "hear-dual-crepe-tiny",
                    "hear-dual-crepe-full", "hear-dual-musicnn-mtt", "hear-dual-musicnn-msd", "hear-dual-vgg-mtt",
                    "hear-dual-vgg-msd")
# What each spec version may use (SPEC section 2): 1.0 files keep their meaning, 1.1 adds the waveform family,
# 1.2 the skip connection of a stream encoder, 1.3 the log-mel patch family and the 2-D graph ops.
FRONTENDS = {"1.0": ("log_mel",), "1.1": ("log_mel", "waveform_frames")}
FRONTENDS["1.2"] = FRONTENDS["1.1"]
FRONTENDS["1.3"] = FRONTENDS["1.2"] + ("mel_patches",)
OPS = {"1.0": ("conv1d", "batchnorm", "gelu"),
       "1.1": ("conv1d", "batchnorm", "gelu", "relu", "pad", "maxpool1d", "flatten")}
OPS["1.2"] = OPS["1.1"] + ("skip_conv1d",)
OPS["1.3"] = OPS["1.2"] + ("conv2d", "maxpool2d", "reduce", "concat", "add", "dense")
# The families whose encoder sees one fixed-length unit at a time (a waveform frame, a log-mel patch): only there
# may an encoder pad, pool, flatten, or read any earlier point (a graph), since its shapes are known in advance.
FRAMED_FAMILIES = ("waveform_frames", "mel_patches")
FRAME_ONLY_OPS = ("pad", "maxpool1d", "flatten", "conv2d", "maxpool2d", "reduce", "concat", "add", "dense")
# And one that only makes sense in a stream: it aligns an earlier point of the stream to the current one.
STREAM_ONLY_OPS = ("skip_conv1d",)
# Ops that read several points of the graph (field "inputs"); every other op reads one ("input", default the
# previous layer's output), except skip_conv1d, which reads the previous output and its "source".
MULTI_INPUT_OPS = ("concat", "add")
# Ops with parameters <name>.weight (shape: weight_shape) and <name>.bias (out,).
CONV_OPS = ("conv1d", "skip_conv1d", "conv2d", "dense")
# The mel scales (SPEC section 3.1): 1.3 adds Slaney's (librosa's default), which 1.0 to 1.2 may not use.
MEL_SCALES = {"1.0": ("htk",), "1.1": ("htk",), "1.2": ("htk",), "1.3": ("htk", "slaney")}


class SpecError(ValueError):
    """The spec is not a valid hear-dual spec; the message says which field and why."""


def _spec_dir():
    """Installed: the package hear_dual._spec (pyproject maps spec/ there). Source checkout: spec/."""
    try:
        return resources.files("hear_dual._spec")
    except ModuleNotFoundError:
        return resources.files("hear_dual").joinpath("..", "spec")


def load_schema() -> dict:
    return json.loads(_spec_dir().joinpath("schema.json").read_text())


@lru_cache(maxsize=1)
def _schema_validator():
    """One validator for the process: jsonschema.validate checks the schema itself on every call (0.1 s a spec,
    three specs for every `hear-dual embed`)."""
    schema = load_schema()
    validator = jsonschema.validators.validator_for(schema)
    validator.check_schema(schema)
    return validator(schema)


def builtin_spec_json(variant: str) -> str:
    if variant not in BUILTIN_VARIANTS:
        raise SpecError(f"unknown built-in variant {variant!r}; expected one of {BUILTIN_VARIANTS}")
    return _spec_dir().joinpath(f"{variant}.json").read_text()


def canonical_json(spec: dict) -> str:
    """The byte-stable form that is hashed and embedded in checkpoints."""
    return json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def spec_sha256(spec: dict) -> str:
    return hashlib.sha256(canonical_json(spec).encode()).hexdigest()


@dataclass(frozen=True)
class Layer:
    name: str
    op: str
    attrs: dict

    def __getattr__(self, key):
        if key == "attrs":   # not set yet (copy, pickle): looking it up here would recurse forever
            raise AttributeError(key)
        try:
            return self.attrs[key]
        except KeyError:
            raise AttributeError(key) from None


class Spec:
    """A validated spec plus everything derived from it."""

    def __init__(self, raw: dict):
        self.raw = copy.deepcopy(raw)
        _validate(self.raw)
        self.name: str = self.raw["name"]
        self.version: str = self.raw["spec_version"]
        self.sample_rate: int = self.raw["sample_rate"]
        self.frontend: dict = self.raw["frontend"]
        self.frontend_type: str = self.frontend.get("type", "log_mel")
        self.layers = [Layer(d["name"], d["op"], {k: v for k, v in d.items() if k not in ("name", "op")})
                       for d in self.raw["encoder"]]
        emb = self.raw["embedding"]
        self.timestamp_embedding_size: int = emb["timestamp_embedding_size"]
        self.scene_embedding_size: int = emb["scene_embedding_size"]
        self.scene_pooling: list = emb["scene_pooling"]
        self.scene_hop_samples: int = emb.get("scene_hop_length", self.hop_samples)
        self.tolerance: float = self.raw["parity"]["tolerance"]
        self.min_cosine: float = self.raw["parity"]["min_cosine"]

    @classmethod
    def from_json(cls, text: str) -> Spec:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as e:
            raise SpecError(f"spec is not valid JSON: {e}") from None
        return cls(raw)

    @classmethod
    def builtin(cls, variant: str = "hear-dual-base") -> Spec:
        return cls.from_json(builtin_spec_json(variant))

    def to_json(self) -> str:
        return canonical_json(self.raw)

    @cached_property
    def sha256(self) -> str:
        return spec_sha256(self.raw)

    # --- the family: how audio becomes the encoder's input, and what one output is ---
    @property
    def is_framed(self) -> bool:
        """True for the waveform-frames family: the encoder maps each frame, alone, to one embedding."""
        return self.frontend_type == "waveform_frames"

    @property
    def is_patched(self) -> bool:
        """True for the log-mel patch family (1.3): the encoder maps each patch of log-mel frames, alone, to an
        embedding per frame (per_frame) or one for the whole patch."""
        return self.frontend_type == "mel_patches"

    @property
    def per_frame(self) -> bool:
        """Patch family: the encoder keeps the patch's time axis, so every log-mel frame gets an embedding and
        patches tile the clip; otherwise each patch is centred on its own timestamp (SPEC section 5)."""
        return self.is_patched and len(self.output_shape) == 2

    @property
    def scene_from_timestamps(self) -> bool:
        """True where the scene pools the timestamp embeddings themselves (SPEC section 6): not for a waveform spec
        with a scene hop of its own, nor for the patch family, whose scene pools whole patches."""
        return not self.is_patched and self.scene_hop_samples == self.hop_samples

    @property
    def n_bins(self) -> int:
        return self.frontend["n_fft"] // 2 + 1

    @cached_property
    def total_stride(self) -> int:
        """Frames between timestamps: a log-mel encoder's conv1d strides; 1 for waveform frames (one frame, one
        embedding); a patch spec's patch_hop, or 1 where every frame has its embedding."""
        if self.is_framed:
            return 1
        if self.is_patched:
            return 1 if self.per_frame else self.frontend["patch_hop"]
        return math.prod(layer.stride for layer in self.layers if layer.op == "conv1d")

    @property
    def hop_samples(self) -> int:
        """Samples between consecutive timestamps."""
        return self.frontend["hop_length"] * self.total_stride

    @property
    def hop_ms(self) -> float:
        return 1000.0 * self.hop_samples / self.sample_rate

    @cached_property
    def skip_crops(self) -> dict[str, int]:
        """skip_conv1d layer name -> frames of its source skipped before its first window (SPEC section 4)."""
        return {} if self.is_framed or self.is_patched else _skip_crops(self.raw["encoder"])

    @cached_property
    def layer_inputs(self) -> dict[str, tuple[str, ...]]:
        """Layer name -> the points it reads, in order: "frontend" or earlier layers' names (SPEC section 2,
        rule 7b). One mechanism for every op: a skip_conv1d reads the previous output and its source."""
        return _layer_inputs(self.raw["encoder"])

    @cached_property
    def kept_points(self) -> dict[str, str]:
        """Point -> the last layer that reads it, for every point some layer reads other than the one right
        after it: the only outputs a backend must keep while it walks the encoder."""
        return _kept_points(self.raw["encoder"])

    @property
    def receptive_field_frames(self) -> int:
        return 1 if self.is_framed or self.is_patched else _receptive_field_frames(self.raw["encoder"])

    @property
    def unit_samples(self) -> int:
        """Samples one encoder unit reads: a waveform frame, or a patch of log-mel frames with their windows."""
        fe = self.frontend
        if self.is_framed:
            return fe["frame_length"]
        return fe["hop_length"] * (fe["patch_frames"] - 1) + fe["win_length"]

    @property
    def receptive_field_samples(self) -> int:
        if self.is_framed or self.is_patched:
            return self.unit_samples
        return self.frontend["hop_length"] * (self.receptive_field_frames - 1) + self.frontend["win_length"]

    @property
    def pad_left(self) -> int:
        """Zeros before sample 0 so that output k is centred on sample k * hop_samples (the patch family: the
        unit of output k, or for per-frame specs the frame of output k)."""
        if self.is_framed:
            return self.frontend["pad_left"]
        if self.is_patched:
            return self.frontend["win_length"] // 2 if self.per_frame else self.unit_samples // 2
        return (self.frontend["hop_length"] * (self.receptive_field_frames - 1) + self.frontend["win_length"]) // 2

    @property
    def pad_right(self) -> int | None:
        """Zeros after the clip that the last unit may read (framed families); None: as many as needed."""
        if self.is_framed:
            return self.frontend["pad_right"]
        return self.pad_left if self.is_patched else None

    @cached_property
    def frame_shapes(self) -> list[tuple[int, ...]]:
        """Framed families: the shape of one unit after the frontend and after each layer, without the batch:
        (channels, length) for a waveform frame or a time series, (channels, time, freq) for a map, (features,)
        after flatten, reduce over time or dense."""
        return [shape for _, shape in _unit_shapes(self.raw)]

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.frame_shapes[-1]

    @property
    def frame_activation_floats(self) -> int:
        """Framed families: the largest float32 activation of one unit, counting the taps gathered for an
        in_channels = 1 convolution. hear_dual.audio sizes chunks by it, so memory stays bounded for any model."""
        shapes = dict(_unit_shapes(self.raw))
        sizes = [math.prod(s) for s in shapes.values()]
        for layer in self.layers:
            if layer.op in ("conv1d", "conv2d") and layer.in_channels == 1:
                sizes.append(math.prod(_as_tuple(layer.kernel_size)) * math.prod(shapes[layer.name][1:]))
        return max(sizes)

    # --- parameters ---
    @cached_property
    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """Canonical (ONNX / torch) layouts: conv1d weight (out, in, kernel) = OIW, conv2d (out, in, time, freq) =
        OIHW, dense (out, in)."""
        shapes = {}
        for layer in self.layers:
            if layer.op in CONV_OPS:
                shapes[f"{layer.name}.weight"] = weight_shape(layer)
                shapes[f"{layer.name}.bias"] = (weight_shape(layer)[0],)
            elif layer.op == "batchnorm":
                for p in ("weight", "bias", "running_mean", "running_var"):
                    shapes[f"{layer.name}.{p}"] = (layer.channels,)
        return shapes

    @property
    def parameter_count(self) -> int:
        return sum(math.prod(s) for s in self.parameter_shapes.values())

    @property
    def flops_per_second(self) -> float:
        """Multiply-adds count as 2 FLOPs; element-wise ops counted once per element (SPEC section 10)."""
        fe = self.frontend
        frames = self.sample_rate / fe["hop_length"]
        if self.is_framed:
            flops = frames * 6 * fe["frame_length"]                      # mean, centre, square-sum, divide
            return flops + frames * _unit_flops(self.raw)
        flops = frames * 2 * fe["win_length"] * 2 * self.n_bins      # windowed DFT (cos and sin)
        flops += frames * 3 * self.n_bins                            # re^2 + im^2
        flops += frames * 2 * self.n_bins * fe["n_mels"]             # mel filterbank
        flops += frames * 2 * fe["n_mels"]                           # log(x + offset), log10(scale x + offset)
        if self.is_patched:         # every frame is computed once; units per second: tiled patches or timestamps
            units = frames / (fe["patch_frames"] if self.per_frame else fe["patch_hop"])
            return flops + units * _unit_flops(self.raw)
        rate, channels = frames, fe["n_mels"]
        for layer in self.layers:
            if layer.op == "conv1d":
                rate /= layer.stride
                flops += rate * 2 * layer.kernel_size * layer.in_channels * layer.out_channels
                channels = layer.out_channels
            elif layer.op == "batchnorm":
                flops += rate * 2 * channels
            elif layer.op == "gelu":
                flops += rate * 8 * channels
            elif layer.op == "relu":
                flops += rate * channels
            elif layer.op == "skip_conv1d":        # at the stream's rate; the concatenation moves data only
                flops += rate * 2 * layer.kernel_size * layer.in_channels * layer.out_channels
                channels += layer.out_channels
        return flops

    def matmuls(self) -> list[dict]:
        """The matrix products inside flops_per_second, per audio second (what a benchmark's GEMM limit is made
        of): `count` products of (`rows`, `k`) by (`k`, `n`) in `dtype`, `rows` per audio second. Convolutions as
        SPEC section 4 computes them: one product per kernel tap of in_channels terms (the taps gathered into one
        when in_channels is 1); the frontend's DFT and mel filterbank in its precision."""
        fe = self.frontend
        frames = self.sample_rate / fe["hop_length"]

        def product(layer: str, rows: float, k: int, n: int, count: int = 1, dtype: str = "float32") -> dict:
            return {"layer": layer, "rows": rows, "k": k, "n": n, "count": count, "dtype": dtype}

        def conv(name: str, rows: float, cin: int, cout: int, taps: int) -> dict:
            return product(name, rows, taps, cout) if cin == 1 else product(name, rows, cin, cout, taps)

        if self.is_framed:
            units = frames
        else:
            dtype = fe.get("precision", "float64")
            out = [product("frontend.dft", frames, fe["win_length"], 2 * self.n_bins, dtype=dtype),
                   product("frontend.mel", frames, self.n_bins, fe["n_mels"], dtype=dtype)]
            units = frames / (fe["patch_frames"] if self.per_frame else fe["patch_hop"]) if self.is_patched else None
        if units is None:           # the log-mel stream: rates fall with each stride
            rate = frames
            for layer in self.layers:
                if layer.op == "conv1d":
                    rate /= layer.stride
                if layer.op in ("conv1d", "skip_conv1d"):
                    out.append(conv(layer.name, rate, layer.in_channels, layer.out_channels, layer.kernel_size))
            return out
        out = [] if self.is_framed else out
        shapes = dict(_unit_shapes(self.raw))
        for layer in self.layers:
            positions = math.prod(shapes[layer.name][1:])      # output positions of one unit (time x freq)
            if layer.op == "conv1d":
                out.append(conv(layer.name, units * positions, layer.in_channels, layer.out_channels,
                                layer.kernel_size))
            elif layer.op == "conv2d":
                out.append(conv(layer.name, units * positions, layer.in_channels, layer.out_channels,
                                math.prod(layer.kernel_size)))
            elif layer.op == "dense":
                out.append(product(layer.name, units, layer.in_features, layer.out_features))
        return out

    def summary(self) -> dict:
        return {
            "name": self.name,
            "spec_version": self.version,
            "spec_sha256": self.sha256,
            "track": self.raw["track"],
            "sample_rate": self.sample_rate,
            "timestamp_embedding_size": self.timestamp_embedding_size,
            "scene_embedding_size": self.scene_embedding_size,
            "scene_pooling": "+".join(self.scene_pooling),
            "scene_hop_ms": 1000.0 * self.scene_hop_samples / self.sample_rate,
            "frontend": self.frontend_type,
            "hop_ms": self.hop_ms,
            "hop_samples": self.hop_samples,
            "receptive_field_ms": 1000.0 * self.receptive_field_samples / self.sample_rate,
            "parameters": self.parameter_count,
            "gflops_per_audio_second": self.flops_per_second / 1e9,
            "parity_tolerance": self.tolerance,
            "license_code": self.raw["license"]["code"],
            "license_weights": self.raw["license"]["weights"],
        }


def _as_tuple(value) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def weight_shape(layer) -> tuple[int, ...]:
    """Canonical shape of a CONV_OPS layer's weight: (out, in, *kernel) for convolutions, (out, in) for dense."""
    if layer.op == "dense":
        return (layer.out_features, layer.in_features)
    return (layer.out_channels, layer.in_channels, *_as_tuple(layer.kernel_size))


def _validate(raw: dict) -> None:
    if not isinstance(raw, dict):
        raise SpecError(f"spec must be a JSON object, got {type(raw).__name__}")
    version = raw.get("spec_version")
    if version not in SUPPORTED_SPEC_VERSIONS:
        raise SpecError(f"unsupported spec_version {version!r}; this hear-dual reads {SUPPORTED_SPEC_VERSIONS}")
    error = jsonschema.exceptions.best_match(_schema_validator().iter_errors(raw))     # as jsonschema.validate
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise SpecError(f"spec field {where}: {error.message}")

    fe = raw["frontend"]
    frontend_type = fe.get("type", "log_mel")
    if frontend_type not in FRONTENDS[version]:
        first = next(v for v in SUPPORTED_SPEC_VERSIONS if frontend_type in FRONTENDS[v])
        raise SpecError(f"frontend.type {frontend_type!r} needs spec_version {first} (this spec is {version!r})")
    if "mel_scale" in fe and fe["mel_scale"] not in MEL_SCALES[version]:
        raise SpecError(f"frontend.mel_scale {fe['mel_scale']!r} needs spec_version 1.3 (this spec is {version!r})")
    if "scene_hop_length" in raw["embedding"] and frontend_type != "waveform_frames":
        raise SpecError("embedding.scene_hop_length needs the waveform_frames frontend: a log-mel encoder's "
                        "hop is fixed by its strides, a patch spec's scene pools whole patches")
    framed = frontend_type in FRAMED_FAMILIES

    def since(first: str) -> bool:
        return SUPPORTED_SPEC_VERSIONS.index(version) >= SUPPORTED_SPEC_VERSIONS.index(first)

    names = {"frontend"}
    for i, layer in enumerate(raw["encoder"]):
        where = f"encoder/{i} ({layer['name']})"
        if layer["name"] in names:
            raise SpecError(f"{where}: duplicate layer name")
        if layer["op"] not in OPS[version]:
            first = next(v for v in SUPPORTED_SPEC_VERSIONS if layer["op"] in OPS[v])
            raise SpecError(f"{where}: op {layer['op']!r} needs spec_version {first} (this spec is {version!r})")
        if layer["op"] in FRAME_ONLY_OPS and not framed:
            raise SpecError(f"{where}: op {layer['op']!r} needs a framed frontend ({' or '.join(FRAMED_FAMILIES)})")
        if layer["op"] in STREAM_ONLY_OPS and framed:
            raise SpecError(f"{where}: op {layer['op']!r} needs the log_mel frontend")
        if layer["op"] == "flatten" and layer["order"] == "channel_last" and not since("1.3"):
            raise SpecError(f"{where}: flatten order 'channel_last' needs spec_version 1.3 (this spec is {version!r})")
        if "input" in layer and not (framed and since("1.3")):
            raise SpecError(f"{where}: field 'input' needs spec_version 1.3 and a framed frontend "
                            f"({' or '.join(FRAMED_FAMILIES)}): a stream encoder reads only the previous output")
        for source in (layer.get("input"), *layer.get("inputs", ())):
            if source is not None and source not in names:
                raise SpecError(f"{where}: input {source!r} is neither 'frontend' nor an earlier layer")
        if layer["op"] == "conv1d" and layer["stride"] > 1 and layer["dilation"] > 1:
            raise SpecError(f"{where}: stride and dilation cannot both exceed 1")
        names.add(layer["name"])
    check = {"waveform_frames": _check_frames, "mel_patches": _check_patches}.get(frontend_type, _check_log_mel)
    channels = check(raw)

    emb = raw["embedding"]
    if emb["timestamp_embedding_size"] != channels:
        raise SpecError(f"embedding.timestamp_embedding_size is {emb['timestamp_embedding_size']} "
                        f"but the encoder outputs {channels} channels")
    if emb["scene_embedding_size"] != channels * len(emb["scene_pooling"]):
        raise SpecError(f"embedding.scene_embedding_size is {emb['scene_embedding_size']}; "
                        f"{len(emb['scene_pooling'])} poolings of {channels} channels give "
                        f"{channels * len(emb['scene_pooling'])}")
    if raw["track"] == "compact" and max(emb["timestamp_embedding_size"], emb["scene_embedding_size"]) > 64:
        raise SpecError("compact track embeddings must be at most 64 wide")


def _check_channels(layer: dict, where: str, channels: int) -> int:
    """The channel walk of rule 7 for a stream encoder: returns the channels after the layer."""
    if layer["op"] == "conv1d":
        if layer["in_channels"] != channels:
            raise SpecError(f"{where}: in_channels {layer['in_channels']} but the previous layer gives {channels}")
        return layer["out_channels"]
    if layer["op"] == "batchnorm" and layer["channels"] != channels:
        raise SpecError(f"{where}: channels {layer['channels']} but the previous layer gives {channels}")
    return channels


def _check_mel(raw: dict) -> None:
    """Rules 3 to 5 and 12, shared by the log-mel families (the stream and the patches)."""
    fe = raw["frontend"]
    if fe["n_fft"] != fe["win_length"]:
        raise SpecError(f"frontend.n_fft ({fe['n_fft']}) must equal frontend.win_length ({fe['win_length']})")
    if fe["win_length"] % fe["hop_length"]:
        raise SpecError(f"frontend.win_length ({fe['win_length']}) must be a multiple of "
                        f"frontend.hop_length ({fe['hop_length']}) so framing is a reshape")
    if not fe["f_min"] < fe["f_max"] <= raw["sample_rate"] / 2:
        raise SpecError(f"frontend needs f_min < f_max <= sample_rate/2, got f_min={fe['f_min']}, "
                        f"f_max={fe['f_max']}, sample_rate={raw['sample_rate']}")
    try:
        mel_filterbank(raw["sample_rate"], fe["n_fft"], fe["n_mels"], fe["f_min"], fe["f_max"], fe["mel_norm"],
                       fe["mel_scale"])
    except ValueError as e:
        raise SpecError(f"frontend: {e}") from None


def _check_log_mel(raw: dict) -> int:
    fe = raw["frontend"]
    _check_mel(raw)
    channels = fe["n_mels"]
    at = {"frontend": channels}             # channels at each point a skip_conv1d may read
    for i, layer in enumerate(raw["encoder"]):
        where = f"encoder/{i} ({layer['name']})"
        if layer["op"] == "skip_conv1d":
            if layer["source"] not in at:
                raise SpecError(f"{where}: source {layer['source']!r} is neither 'frontend' nor an earlier layer")
            if layer["in_channels"] != at[layer["source"]]:
                raise SpecError(f"{where}: in_channels {layer['in_channels']} but its source "
                                f"{layer['source']!r} gives {at[layer['source']]}")
            channels += layer["out_channels"]
        else:
            channels = _check_channels(layer, where, channels)
        at[layer["name"]] = channels
    _skip_crops(raw["encoder"])             # raises SpecError for a window that cannot be centred
    rf = _receptive_field_frames(raw["encoder"])
    if (fe["hop_length"] * (rf - 1) + fe["win_length"]) % 2:
        raise SpecError("receptive field in samples must be even so embeddings centre on a whole sample")
    return channels


def _check_frames(raw: dict) -> int:
    """Rules 14 to 17 (SPEC section 2): returns the width of the flattened frame embedding."""
    fe = raw["frontend"]
    if fe["frame_length"] % 2 or fe["pad_left"] != fe["frame_length"] // 2:
        raise SpecError(f"frontend.pad_left ({fe['pad_left']}) must be half of an even frontend.frame_length "
                        f"({fe['frame_length']}) so each frame is centred on its timestamp")
    if fe["pad_right"] < fe["pad_left"] - 1:
        raise SpecError(f"frontend.pad_right ({fe['pad_right']}) must be at least pad_left - 1 "
                        f"({fe['pad_left'] - 1}) so every clip has a timestamp at 0")
    if fe["normalization"]["std_ddof"] >= fe["frame_length"]:
        raise SpecError("frontend.normalization.std_ddof must be smaller than frontend.frame_length")
    encoder = raw["encoder"]
    if encoder[-1]["op"] != "flatten" or any(layer["op"] == "flatten" for layer in encoder[:-1]):
        raise SpecError("a waveform_frames encoder must end with its only flatten (one vector per frame)")
    return _unit_shapes(raw)[-1][1][0]      # raises SpecError where a frame becomes empty


def _check_patches(raw: dict) -> int:
    """Rules 18 to 21 (SPEC section 2): returns the width of the patch encoder's output."""
    fe = raw["frontend"]
    _check_mel(raw)
    if fe["win_length"] % 2:
        raise SpecError(f"frontend.win_length ({fe['win_length']}) must be even so each frame centres on a sample")
    shape = _unit_shapes(raw)[-1][1]       # raises SpecError where a unit becomes empty or an op's input is wrong
    if shape == (shape[0], fe["patch_frames"]):
        if fe["patch_hop"] != fe["patch_frames"]:
            raise SpecError(f"frontend.patch_hop ({fe['patch_hop']}) must equal patch_frames ({fe['patch_frames']}): "
                            "an encoder that keeps the time axis gives every frame its embedding, so patches tile")
    elif len(shape) == 1:
        if fe["patch_frames"] % 2 == 0:
            raise SpecError(f"frontend.patch_frames ({fe['patch_frames']}) must be odd so each patch is centred "
                            "on its timestamp's frame")
    else:
        raise SpecError(f"the encoder's output must be (channels, {fe['patch_frames']}) (an embedding per frame) or "
                        f"(features,) (one per patch); it is {shape}")
    return shape[0]


def _layer_inputs(encoder: list[dict]) -> dict[str, tuple[str, ...]]:
    inputs, previous = {}, "frontend"
    for layer in encoder:
        if layer["op"] in MULTI_INPUT_OPS:
            inputs[layer["name"]] = tuple(layer["inputs"])
        elif layer["op"] == "skip_conv1d":
            inputs[layer["name"]] = (previous, layer["source"])
        else:
            inputs[layer["name"]] = (layer.get("input", previous),)
        previous = layer["name"]
    return inputs


def _kept_points(encoder: list[dict]) -> dict[str, str]:
    inputs, kept, previous = _layer_inputs(encoder), {}, "frontend"
    for layer in encoder:
        for point in inputs[layer["name"]]:
            if point != previous:       # the previous output is at hand anyway
                kept[point] = layer["name"]
        previous = layer["name"]
    return kept


# --- the shape walk of the framed families ----------------------------------------------------------------------

def _unit_shapes(raw: dict) -> list[tuple[str, tuple[int, ...]]]:
    """(point, shape of one unit there) for the frontend's output and each layer's, in order (rules 16 and 19)."""
    fe = raw["frontend"]
    if fe.get("type") == "mel_patches":
        shapes = {"frontend": (1, fe["patch_frames"], fe["n_mels"])}     # one channel, time, frequency
    else:
        shapes = {"frontend": (1, fe["frame_length"])}
    inputs = _layer_inputs(raw["encoder"])
    for i, layer in enumerate(raw["encoder"]):
        where = f"encoder/{i} ({layer['name']})"
        shape = _op_shape(layer, [shapes[p] for p in inputs[layer["name"]]], where)
        if min(shape) < 1:
            unit = "patch" if fe.get("type") == "mel_patches" else "frame"
            raise SpecError(f"{where}: a {unit} has no samples left here (shape {shape})")
        shapes[layer["name"]] = shape
    read = {point for points in inputs.values() for point in points}
    unread = [layer["name"] for layer in raw["encoder"][:-1] if layer["name"] not in read]
    if unread:      # a branch that leads nowhere costs compute and is almost always a mistake in the graph
        raise SpecError(f"the outputs of {unread} are never read: every layer but the last must feed a later one")
    return list(shapes.items())


def _op_shape(layer: dict, ins: list[tuple[int, ...]], where: str) -> tuple[int, ...]:
    """One op's output shape from its inputs' (without the batch), checking ranks and channels (rule 7)."""
    op, x = layer["op"], ins[0]

    def need(rank: int, what: str):
        if len(x) != rank:
            raise SpecError(f"{where}: {op} needs {what}, its input has shape {x}")

    def channels(expected: int, field: str):
        if x[0] != expected:
            raise SpecError(f"{where}: {field} {expected} but its input gives {x[0]}")

    if op == "conv1d":
        need(2, "(channels, time)")
        channels(layer["in_channels"], "in_channels")
        d, k, s = layer["dilation"], layer["kernel_size"], layer["stride"]
        return (layer["out_channels"], (x[1] - d * (k - 1) - 1) // s + 1)
    if op == "conv2d":
        need(3, "(channels, time, freq)")
        channels(layer["in_channels"], "in_channels")
        (kt, kf), (st, sf), ((t0, t1), (f0, f1)) = layer["kernel_size"], layer["stride"], layer["padding"]
        return (layer["out_channels"], (x[1] + t0 + t1 - kt) // st + 1, (x[2] + f0 + f1 - kf) // sf + 1)
    if op == "batchnorm":                   # channels first, at any rank
        channels(layer["channels"], "channels")
        return x
    if op in ("gelu", "relu"):
        return x
    if op == "pad":
        if len(x) not in (2, 3):
            need(2, "a time axis")
        return (x[0], x[1] + layer["left"] + layer["right"], *x[2:])
    if op == "maxpool1d":
        need(2, "(channels, time)")
        return (x[0], (x[1] - layer["kernel_size"]) // layer["stride"] + 1)
    if op == "maxpool2d":
        need(3, "(channels, time, freq)")
        (kt, kf), (st, sf) = layer["kernel_size"], layer["stride"]
        return (x[0], (x[1] - kt) // st + 1, (x[2] - kf) // sf + 1)
    if op == "reduce":
        if layer["axis"] == "freq":
            need(3, "(channels, time, freq) to reduce over freq")
            return x[:2]
        need(2, "(channels, time) to reduce over time")
        return x[:1]
    if op == "flatten":
        if len(x) not in (2, 3):
            need(2, "a time axis")
        return (math.prod(x),)
    if op == "dense":
        need(1, "(features,)")
        channels(layer["in_features"], "in_features")
        return (layer["out_features"],)
    if op == "concat":
        if any(len(s) != len(x) or s[1:] != x[1:] for s in ins):
            raise SpecError(f"{where}: concat needs inputs that differ in channels only, got {ins}")
        return (sum(s[0] for s in ins), *x[1:])
    if op == "add":
        if any(s != x for s in ins):
            raise SpecError(f"{where}: add needs inputs of one shape, got {ins}")
        return x
    raise SpecError(f"{where}: op {op!r} cannot be used here")


def _unit_flops(raw: dict) -> float:
    """FLOPs of one unit through the encoder of a framed family (SPEC section 10): a multiply-add is 2, an
    element-wise op 1 per element (batchnorm 2, gelu 8), a max over k values k - 1, a mean over k values k."""
    shapes = dict(_unit_shapes(raw))
    inputs = _layer_inputs(raw["encoder"])
    flops = 0.0
    for layer in raw["encoder"]:
        ins, out = [shapes[p] for p in inputs[layer["name"]]], shapes[layer["name"]]
        op, n_in, n_out = layer["op"], math.prod(ins[0]), math.prod(out)
        if op in ("conv1d", "conv2d", "dense"):
            fan_in = math.prod(weight_shape(Layer(layer["name"], op, layer))[1:])
            flops += 2 * fan_in * n_out
        elif op in ("batchnorm", "gelu", "relu"):
            flops += {"batchnorm": 2, "gelu": 8, "relu": 1}[op] * n_in
        elif op in ("maxpool1d", "maxpool2d"):
            flops += (math.prod(_as_tuple(layer["kernel_size"])) - 1) * n_out
        elif op == "reduce":
            flops += n_in - (n_out if layer["kind"] == "max" else 0)
        elif op == "add":
            flops += (len(ins) - 1) * n_out
    return flops


# --- the stream family's geometry ------------------------------------------------------------------------------

def _stream_points(encoder: list[dict]) -> dict[str, tuple[int, int]]:
    """(receptive field, jump) in log-mel frames of the frontend's output ("frontend") and of each layer's: a jump
    is the frames between consecutive outputs. Only conv1d changes them (a skip_conv1d is centred inside)."""
    rf, jump, points = 1, 1, {"frontend": (1, 1)}
    for layer in encoder:
        if layer["op"] == "conv1d":
            rf += (layer["kernel_size"] - 1) * layer["dilation"] * jump
            jump *= layer["stride"]
        points[layer["name"]] = (rf, jump)
    return points


def _skip_crops(encoder: list[dict]) -> dict[str, int]:
    """For each skip_conv1d: the crop c that centres its windows on the stream's (SPEC section 4).

    Output t of the stream (receptive field rf, jump j) is centred on frame j t + (rf - 1) / 2; the skip's window
    over its source reads source steps stride t + c .. stride t + c + kernel - 1. Equal centres for every t need
    stride = j / source j and c = (rf - source rf - source j (kernel - 1)) / (2 source j), a whole number >= 0;
    then the window lies inside the stream's receptive field, so the op changes neither the receptive field
    nor the hop.
    """
    points, crops = _stream_points(encoder), {}
    for i, layer in enumerate(encoder):
        if layer["op"] != "skip_conv1d":
            continue
        where = f"encoder/{i} ({layer['name']})"
        (rf, jump), (source_rf, source_jump) = points[layer["name"]], points[layer["source"]]
        if jump != source_jump * layer["stride"]:
            raise SpecError(f"{where}: stride {layer['stride']} but the stream advances "
                            f"{jump // source_jump} steps of its source per output")
        crop, odd = divmod(rf - source_rf - source_jump * (layer["kernel_size"] - 1), 2 * source_jump)
        if odd or crop < 0:
            raise SpecError(f"{where}: a kernel of {layer['kernel_size']} cannot be centred inside the "
                            f"stream's receptive field of {rf} frames (source's {source_rf})")
        crops[layer["name"]] = crop
    return crops


def _receptive_field_frames(encoder: list[dict]) -> int:
    return list(_stream_points(encoder).values())[-1][0]
