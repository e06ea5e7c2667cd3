"""Checkpoints shipped inside the package (weights CC-BY-4.0).

    import hear_dual.checkpoints, hear_dual.tf_impl as m
    model = m.load_model(hear_dual.checkpoints.path("compact"))
"""

from hear_dual.checkpoint import checkpoint_path

SHORT_NAMES = {"base": "hear-dual-base", "seeded": "hear-dual-base-seeded", "compact": "hear-dual-compact",
               "randproj": "hear-dual-randproj"}


def path(name: str = "base") -> str:
    """Path of a shipped checkpoint: "base" (the default model, trained), "seeded" (the same architecture with
    seeded, untrained weights: the reference the trained weights must beat), "compact" (the compact track,
    D <= 64) or "randproj" (a random-projection baseline).

    Full variant names ("hear-dual-compact") work too.
    """
    variant = SHORT_NAMES.get(name, name)
    if variant not in SHORT_NAMES.values():
        raise ValueError(f"no shipped checkpoint {name!r}; expected one of {sorted(SHORT_NAMES)}")
    return checkpoint_path(variant)


def available() -> dict[str, str]:
    return {short: checkpoint_path(variant) for short, variant in SHORT_NAMES.items()}
