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

SUPPORTED_SPEC_VERSIONS = ("1.0",)
BUILTIN_VARIANTS = ("hear-dual-base", "hear-dual-compact", "hear-dual-randproj")


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
        self.layers = [Layer(d["name"], d["op"], {k: v for k, v in d.items() if k not in ("name", "op")})
                       for d in self.raw["encoder"]]
        emb = self.raw["embedding"]
        self.timestamp_embedding_size: int = emb["timestamp_embedding_size"]
        self.scene_embedding_size: int = emb["scene_embedding_size"]
        self.scene_pooling: list = emb["scene_pooling"]
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
    def n_bins(self) -> int:
        return self.frontend["n_fft"] // 2 + 1

    @property
    def total_stride(self) -> int:
        return math.prod(layer.stride for layer in self.layers if layer.op == "conv1d")

    @property
    def hop_samples(self) -> int:
        """Samples between consecutive timestamps."""
        return self.frontend["hop_length"] * self.total_stride

    @property
    def hop_ms(self) -> float:
        return 1000.0 * self.hop_samples / self.sample_rate

    @property
    def receptive_field_frames(self) -> int:
        return _receptive_field_frames(self.raw["encoder"])

    @property
    def receptive_field_samples(self) -> int:
        return self.frontend["hop_length"] * (self.receptive_field_frames - 1) + self.frontend["win_length"]

    @property
    def pad_left(self) -> int:
        """Zeros before sample 0 so that output k is centred on sample k * hop_samples."""
        return (self.frontend["hop_length"] * (self.receptive_field_frames - 1) + self.frontend["win_length"]) // 2

    # --- parameters ---
    @cached_property
    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """Canonical (ONNX / torch) layouts: conv1d weight is (out, in, kernel) = OIW."""
        shapes = {}
        for layer in self.layers:
            if layer.op == "conv1d":
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
        """Multiply-adds count as 2 FLOPs; element-wise ops counted once per element."""
        fe = self.frontend
        frames = self.sample_rate / fe["hop_length"]
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
    if fe["n_fft"] != fe["win_length"]:
        raise SpecError(f"frontend.n_fft ({fe['n_fft']}) must equal frontend.win_length ({fe['win_length']})")
    if fe["win_length"] % fe["hop_length"]:
        raise SpecError(f"frontend.win_length ({fe['win_length']}) must be a multiple of "
                        f"frontend.hop_length ({fe['hop_length']}) so framing is a reshape")
    if not fe["f_min"] < fe["f_max"] <= raw["sample_rate"] / 2:
        raise SpecError(f"frontend needs f_min < f_max <= sample_rate/2, got f_min={fe['f_min']}, "
                        f"f_max={fe['f_max']}, sample_rate={raw['sample_rate']}")

    names, channels = set(), fe["n_mels"]
    for i, layer in enumerate(raw["encoder"]):
        where = f"encoder/{i} ({layer['name']})"
        if layer["name"] in names:
            raise SpecError(f"{where}: duplicate layer name")
        names.add(layer["name"])
        if layer["op"] == "conv1d":
            if layer["in_channels"] != channels:
                raise SpecError(f"{where}: in_channels {layer['in_channels']} but the previous layer gives {channels}")
            if layer["stride"] > 1 and layer["dilation"] > 1:
                raise SpecError(f"{where}: stride and dilation cannot both exceed 1")
            channels = layer["out_channels"]
        elif layer["op"] == "batchnorm" and layer["channels"] != channels:
            raise SpecError(f"{where}: channels {layer['channels']} but the previous layer gives {channels}")

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
    from hear_dual.audio import mel_filterbank  # raises SpecError for an empty band

    mel_filterbank(raw["sample_rate"], fe["n_fft"], fe["n_mels"], fe["f_min"], fe["f_max"], fe["mel_norm"])
    rf = _receptive_field_frames(raw["encoder"])
    if (fe["hop_length"] * (rf - 1) + fe["win_length"]) % 2:
        raise SpecError("receptive field in samples must be even so embeddings centre on a whole sample")


def _receptive_field_frames(encoder: list[dict]) -> int:
    rf, jump = 1, 1
    for layer in encoder:
        if layer["op"] == "conv1d":
            rf += (layer["kernel_size"] - 1) * layer["dilation"] * jump
            jump *= layer["stride"]
    return rf
