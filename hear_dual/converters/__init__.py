"""Converters: published weights of other projects into hear-dual checkpoints (`hear-dual convert SOURCE ...`).

Each converter reads its source's files without executing code from them, maps tensors onto a built-in spec
by name and shape (failing on anything missing, extra or misshapen), and writes the checkpoint with
hear_dual.export, which builds the graph with the onnx package alone, checks it and reads the file back.
Provenance (source, version, file and its SHA-256, licence) goes into the checkpoint's metadata.
"""

from __future__ import annotations

import importlib

from hear_dual.checkpoints import SOURCES, source_variant

CONVERTERS = sorted({converter for converter, _ in SOURCES.values()})


def convert(converter: str, model: str, out_path, source=None) -> str:
    """Write `converter`'s `model` as a checkpoint at out_path (from `source`, a file or folder of the published
    weights, or the installed package's); returns out_path."""
    if converter not in CONVERTERS:
        raise ValueError(f"unknown converter {converter!r}; expected one of {CONVERTERS}")
    variant = source_variant(converter, model)       # raises for a model the converter does not have
    return importlib.import_module(f"hear_dual.converters.{converter}").convert(model, variant, out_path, source)
