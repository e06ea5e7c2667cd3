"""Where `load_model(model_file_path)` and every `--weights` option find a checkpoint: a path, "" (the shipped
default), or a model's short or variant name (hear_dual.checkpoints), converting on first use the models whose
weights come from another package (hear_dual.converters).

One level above the checkpoint index and the converters, so that neither of them reaches up: the index knows names
and files, the converters know formats, and this module joins them.
"""

from __future__ import annotations

import os
import sys

from hear_dual import checkpoints


def resolve(model_file_path="", convert: bool = True) -> str:
    """A checkpoint path for `model_file_path`: itself when it is a file (or not a model name: the reader then says
    it is missing); the shipped default for ""; the file of a named model, converted into checkpoints.cache_dir()
    first where it is not there yet and `convert` is true."""
    if model_file_path is None or model_file_path == "":
        return checkpoints.shipped_path()
    if not isinstance(model_file_path, (str, os.PathLike)):
        raise TypeError(f"model_file_path must be a str or path, got {type(model_file_path).__name__}")
    path = os.fspath(model_file_path)
    short = None if os.path.exists(path) else checkpoints.canonical_name(path)
    if short is None:
        return path
    if short in checkpoints.CONVERTED and convert:
        variant = checkpoints.CONVERTED[short]
        target = checkpoints.converted_path(variant)
        if not target.is_file():
            from hear_dual.converters import convert as run_converter

            print(f"hear-dual: converting {short} into {target} (once; the same as "
                  f"`{checkpoints.convert_command(variant)}`)", file=sys.stderr)
            target.parent.mkdir(parents=True, exist_ok=True)
            run_converter(*checkpoints.SOURCES[variant], target)
    return checkpoints.path(short)
