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
from functools import cached_property
from importlib import resources

import jsonschema

SUPPORTED_SPEC_VERSIONS = ("1.0", "1.1", "1.2")
BUILTIN_VARIANTS = ("hear-dual-base", "hear-dual-compact", "hear-dual-randproj", "hear-dual-crepe-tiny",
                    "hear-dual-crepe-full")
# What each spec version may use (SPEC section 2): 1.0 files keep their meaning, 1.1 adds the waveform family,
# 1.2 the skip connection of a stream encoder.
FRONTENDS = {"1.0": ("log_mel",), "1.1": ("log_mel", "waveform_frames")}
FRONTENDS["1.2"] = FRONTENDS["1.1"]
OPS = {"1.0": ("conv1d", "batchnorm", "gelu"),
       "1.1": ("conv1d", "batchnorm", "gelu", "relu", "pad", "maxpool1d", "flatten")}
OPS["1.2"] = OPS["1.1"] + ("skip_conv1d",)
# Ops that only make sense inside a fixed-length frame: a stream encoder's only padding is chunk_plan's.
FRAME_ONLY_OPS = ("pad", "maxpool1d", "flatten")
# And one that only makes sense in a stream: it aligns an earlier point of the stream to the current one.
STREAM_ONLY_OPS = ("skip_conv1d",)
# Ops with a kernel: parameters <name>.weight (out, in, kernel) and <name>.bias (out).
CONV_OPS = ("conv1d", "skip_conv1d")


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

    # --- derived geometry (all in integers; see SPEC.md, "Framing, padding and timestamps") ---
    @property
    def is_framed(self) -> bool:
        """True for the waveform-frames family: the encoder maps each frame, alone, to one embedding."""
        return self.frontend_type == "waveform_frames"

    @property
    def n_bins(self) -> int:
        return self.frontend["n_fft"] // 2 + 1

    @property
    def total_stride(self) -> int:
        """Frames between timestamps of a log-mel encoder (1 for the waveform family: one frame, one embedding)."""
        if self.is_framed:
            return 1
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
        return {} if self.is_framed else _skip_crops(self.raw["encoder"])

    @property
    def receptive_field_frames(self) -> int:
        return 1 if self.is_framed else _receptive_field_frames(self.raw["encoder"])

    @property
    def receptive_field_samples(self) -> int:
        if self.is_framed:
            return self.frontend["frame_length"]
        return self.frontend["hop_length"] * (self.receptive_field_frames - 1) + self.frontend["win_length"]

    @property
    def pad_left(self) -> int:
        """Zeros before sample 0 so that output k is centred on sample k * hop_samples."""
        if self.is_framed:
            return self.frontend["pad_left"]
        return (self.frontend["hop_length"] * (self.receptive_field_frames - 1) + self.frontend["win_length"]) // 2

    @property
    def pad_right(self) -> int | None:
        """Zeros after the clip that the last frame may read (waveform family); None: as many as needed."""
        return self.frontend["pad_right"] if self.is_framed else None

    @cached_property
    def frame_shapes(self) -> list[tuple[int, int]]:
        """Waveform family: (channels, length) of one frame after the frontend and after each layer."""
        return _frame_shapes(self.raw)

    @property
    def frame_activation_floats(self) -> int:
        """Waveform family: the largest float32 activation of one frame, counting the taps gathered for an
        in_channels = 1 conv. hear_dual.audio sizes chunks by it, so memory stays bounded for any model."""
        sizes = [c * t for c, t in self.frame_shapes]
        for layer, (_, t_out) in zip(self.layers, self.frame_shapes[1:]):
            if layer.op == "conv1d" and layer.in_channels == 1:
                sizes.append(layer.kernel_size * t_out)
        return max(sizes)

    # --- parameters ---
    @cached_property
    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """Canonical (ONNX / torch) layouts: conv1d weight is (out, in, kernel) = OIW."""
        shapes = {}
        for layer in self.layers:
            if layer.op in CONV_OPS:
                shapes[f"{layer.name}.weight"] = (layer.out_channels, layer.in_channels, layer.kernel_size)
                shapes[f"{layer.name}.bias"] = (layer.out_channels,)
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
            for layer, (c_in, t_in), (c_out, t_out) in zip(self.layers, self.frame_shapes, self.frame_shapes[1:]):
                # pad and flatten move data only; a max over k values is counted as k - 1 comparisons.
                per_element = {"batchnorm": 2, "gelu": 8, "relu": 1}.get(layer.op, 0)
                flops += frames * per_element * c_in * t_in
                if layer.op == "conv1d":
                    flops += frames * 2 * t_out * layer.kernel_size * c_in * c_out
                elif layer.op == "maxpool1d":
                    flops += frames * (layer.kernel_size - 1) * c_out * t_out
            return flops
        flops = frames * 2 * fe["win_length"] * 2 * self.n_bins      # windowed DFT (cos and sin)
        flops += frames * 3 * self.n_bins                            # re^2 + im^2
        flops += frames * 2 * self.n_bins * fe["n_mels"]             # mel filterbank
        flops += frames * 2 * fe["n_mels"]                           # log(x + offset)
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


def _validate(raw: dict) -> None:
    if not isinstance(raw, dict):
        raise SpecError(f"spec must be a JSON object, got {type(raw).__name__}")
    version = raw.get("spec_version")
    if version not in SUPPORTED_SPEC_VERSIONS:
        raise SpecError(f"unsupported spec_version {version!r}; this hear-dual reads {SUPPORTED_SPEC_VERSIONS}")
    try:
        jsonschema.validate(raw, load_schema())
    except jsonschema.ValidationError as e:
        where = "/".join(str(p) for p in e.absolute_path) or "(top level)"
        raise SpecError(f"spec field {where}: {e.message}") from None

    fe = raw["frontend"]
    frontend_type = fe.get("type", "log_mel")
    if frontend_type not in FRONTENDS[version]:
        raise SpecError(f"frontend.type {frontend_type!r} needs spec_version 1.1 (this spec is {version!r})")
    if "scene_hop_length" in raw["embedding"] and frontend_type != "waveform_frames":
        raise SpecError("embedding.scene_hop_length needs the waveform_frames frontend: a log-mel encoder's "
                        "hop is fixed by its strides")
    names = set()
    for i, layer in enumerate(raw["encoder"]):
        where = f"encoder/{i} ({layer['name']})"
        if layer["name"] in names:
            raise SpecError(f"{where}: duplicate layer name")
        names.add(layer["name"])
        if layer["op"] not in OPS[version]:
            first = next(v for v in SUPPORTED_SPEC_VERSIONS if layer["op"] in OPS[v])
            raise SpecError(f"{where}: op {layer['op']!r} needs spec_version {first} (this spec is {version!r})")
        if layer["op"] in FRAME_ONLY_OPS and frontend_type != "waveform_frames":
            raise SpecError(f"{where}: op {layer['op']!r} needs the waveform_frames frontend")
        if layer["op"] in STREAM_ONLY_OPS and frontend_type == "waveform_frames":
            raise SpecError(f"{where}: op {layer['op']!r} needs the log_mel frontend")
        if layer["op"] == "conv1d" and layer["stride"] > 1 and layer["dilation"] > 1:
            raise SpecError(f"{where}: stride and dilation cannot both exceed 1")
    channels = (_check_frames if frontend_type == "waveform_frames" else _check_log_mel)(raw)

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
    """The channel walk of rule 7: returns the channels after the layer."""
    if layer["op"] == "conv1d":
        if layer["in_channels"] != channels:
            raise SpecError(f"{where}: in_channels {layer['in_channels']} but the previous layer gives {channels}")
        return layer["out_channels"]
    if layer["op"] == "batchnorm" and layer["channels"] != channels:
        raise SpecError(f"{where}: channels {layer['channels']} but the previous layer gives {channels}")
    return channels


def _check_log_mel(raw: dict) -> int:
    fe = raw["frontend"]
    if fe["n_fft"] != fe["win_length"]:
        raise SpecError(f"frontend.n_fft ({fe['n_fft']}) must equal frontend.win_length ({fe['win_length']})")
    if fe["win_length"] % fe["hop_length"]:
        raise SpecError(f"frontend.win_length ({fe['win_length']}) must be a multiple of "
                        f"frontend.hop_length ({fe['hop_length']}) so framing is a reshape")
    if not fe["f_min"] < fe["f_max"] <= raw["sample_rate"] / 2:
        raise SpecError(f"frontend needs f_min < f_max <= sample_rate/2, got f_min={fe['f_min']}, "
                        f"f_max={fe['f_max']}, sample_rate={raw['sample_rate']}")
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
    from hear_dual.audio import mel_filterbank  # raises SpecError for an empty band

    mel_filterbank(raw["sample_rate"], fe["n_fft"], fe["n_mels"], fe["f_min"], fe["f_max"], fe["mel_norm"])
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
    shapes = _frame_shapes(raw)     # raises SpecError where a frame becomes empty
    return shapes[-1][0]


def _frame_shapes(raw: dict) -> list[tuple[int, int]]:
    """(channels, length) of one frame entering the encoder, then after each layer; flatten gives (C * T, 1)."""
    channels, length = 1, raw["frontend"]["frame_length"]
    shapes = [(channels, length)]
    for i, layer in enumerate(raw["encoder"]):
        where = f"encoder/{i} ({layer['name']})"
        channels = _check_channels(layer, where, channels)
        if layer["op"] == "pad":
            length += layer["left"] + layer["right"]
        elif layer["op"] == "conv1d":
            length = (length - layer["dilation"] * (layer["kernel_size"] - 1) - 1) // layer["stride"] + 1
        elif layer["op"] == "maxpool1d":
            length = (length - layer["kernel_size"]) // layer["stride"] + 1
        elif layer["op"] == "flatten":
            channels, length = channels * length, 1
        if length < 1:
            raise SpecError(f"{where}: a {raw['frontend']['frame_length']}-sample frame has no samples left here")
        shapes.append((channels, length))
    return shapes


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
