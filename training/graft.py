"""Stage 2 of hear-dual-compact: graft the fixed spectral skip connection onto a trained stream encoder.

    python -m training.graft --stream /work/trained/hear-dual-compact-run3 \
        --cache /work/trained/espeak-cache --out-dir /work/trained --name hear-dual-compact-graft

Stage 1 (training/README.md) trains training/specs/hear-dual-compact-stream.json, whose 32 timestamp channels are
all learned. The shipped spec, spec/hear-dual-compact.json, keeps the stream's first 24 (proj's first 24 rows)
and appends a skip_conv1d from the log-mel whose 8 channels are exactly train.FrameSpectrum's targets: the top 8
principal components of each timestamp's hop-averaged, per-band standardised log-mel, fitted in float64 on a
stream of training audio that training never draws (seed 0, stream 4). Nothing is trained here; every other
parameter is the stream's, bit for bit.

Why: the scene is mean and max over time, which keep a dimension as it is; 8 dimensions that *are* the frame's
spectrum give the scene the long-term spectrum and its spread, what the logmel-stats reference embeds, and the
stream keeps what it learned. Training the same dimensions to match the targets (--frame-spectrum) matched them
only loosely and gained about half as much (training/README.md, runs 5, 6 and 3 + spectrum).
"""

from __future__ import annotations

import argparse
import hashlib
import os

import numpy as np

from hear_dual.checkpoint import read_checkpoint
from hear_dual.export import write_checkpoint
from hear_dual.spec import Spec
from training import synth, train

STREAM_SPEC = os.path.join(os.path.dirname(__file__), "specs", "hear-dual-compact-stream.json")


def graft(spec: Spec, stream: Spec, stream_params: dict, spectrum: train.FrameSpectrum) -> dict[str, np.ndarray]:
    """The shipped spec's parameters: the stream's, the last conv cut to the rows the spec keeps, plus the skip."""
    skips = [layer for layer in spec.layers if layer.op == "skip_conv1d"]
    # The skip's windows must be exactly centre_frames' (frames offset + stride t - stride / 2 .. + stride / 2).
    if len(skips) != 1 or skips[0].source != "frontend" or skips[0].out_channels != spectrum.k \
            or skips[0].stride != spectrum.stride or skips[0].kernel_size != spectrum.stride + 1 \
            or spec.skip_crops[skips[0].name] != spectrum.offset - spectrum.stride // 2:
        raise ValueError(f"{spec.name}: expected one skip_conv1d of {spectrum.k} channels on the frontend, "
                         f"kernel {spectrum.stride + 1} and stride {spectrum.stride}, centred on the timestamps")
    params = {}
    for name, shape in spec.parameter_shapes.items():
        if name.startswith(f"{skips[0].name}."):
            continue
        have = stream_params[name]
        if have.shape[1:] != shape[1:] or have.shape[0] < shape[0]:
            raise ValueError(f"{name}: the stream's {have.shape} cannot give the spec's {shape}")
        params[name] = np.ascontiguousarray(have[: shape[0]])
    if set(stream_params) != set(params) or set(stream.parameter_shapes) != set(params):
        raise ValueError(f"{stream.name} and {spec.name} must differ only in the skip_conv1d")
    kernel = train.spectrum_kernel(spectrum)
    params |= {f"{skips[0].name}.{key}": value.astype(np.float32) for key, value in kernel.items()}
    return params


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stream", required=True,
                        help="STEM of a stage-1 run: STEM.npz (its parameters) and STEM.onnx (its provenance)")
    parser.add_argument("--spec", default="hear-dual-compact", help="the built-in spec to graft onto")
    parser.add_argument("--cache", default="/work/trained/espeak-cache", help="the training speech cache")
    parser.add_argument("--seed", type=int, default=0, help="the basis's stream (training's --seed)")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--name", default="hear-dual-compact-graft")
    args = parser.parse_args(argv)
    spec, stream = Spec.builtin(args.spec), train.load_spec(STREAM_SPEC)
    with open(f"{args.stream}.npz", "rb") as f:
        stream_sha256 = hashlib.sha256(f.read()).hexdigest()
    trained = read_checkpoint(f"{args.stream}.onnx")     # its spec: the stream architecture, under any name
    if (trained.spec.raw["encoder"], trained.spec.raw["embedding"]) != (stream.raw["encoder"], stream.raw["embedding"]):
        raise SystemExit(f"{args.stream}.onnx is not a {stream.name} ({STREAM_SPEC}): its encoder differs")
    recipe = train.build_parser().parse_args(["--seed", str(args.seed), "--spec", STREAM_SPEC])
    _, train_utts = train.split_utterances(len(synth.SpeechCache(args.cache)), args.seed)
    fit = train.fit_logmels(stream, args.cache, recipe.batch, recipe.clip_seconds, recipe.speech_fraction,
                            args.seed, train_utts)
    skip = next(layer for layer in spec.layers if layer.op == "skip_conv1d")
    spectrum = train.FrameSpectrum(stream, int(round(recipe.clip_seconds * spec.sample_rate)), fit, skip.out_channels)
    with np.load(f"{args.stream}.npz") as f:
        params = graft(spec, stream, {name: f[name] for name in f.files}, spectrum)
    os.makedirs(args.out_dir, exist_ok=True)
    out = os.path.join(args.out_dir, f"{args.name}.onnx")
    # The stream's own provenance (teacher, seed, steps, loss weights) stays; what the graft did is added.
    provenance = trained.provenance | {
        "source": "hear-dual training recipe, training/train.py then training/graft.py", "spec": spec.name,
        "stream": {"file": os.path.basename(f"{args.stream}.npz"), "sha256": stream_sha256,
                   "spec": trained.spec.name, "spec_sha256": trained.spec.sha256},
        "skip": {"layer": skip.name, "frame_spectrum_dims": skip.out_channels, "basis_seed": args.seed,
                 "data": "procedural audio and espeak-ng speech (training/synth.py); no evaluation data"}}
    write_checkpoint(spec, params, out, provenance)
    np.savez(os.path.join(args.out_dir, f"{args.name}.npz"), **params)
    print(out)


if __name__ == "__main__":
    main()
