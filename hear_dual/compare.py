"""Compare any two HEAR 2021 modules by import name: the organizers' check that two ports of one model agree.

    hear-dual compare participant_torch participant_tf --weights-a a.pt --weights-b b.h5

Both modules get identical deterministic audio at their (shared) sample rate: every signal kind of
hear_dual.signals at each length, plus FSDD speech when it is present. For each input the timestamp and
scene embeddings go through the parity gate (hear_dual.parity.agreement), the timestamps must be identical,
and the shapes equal. With FSDD, a probe trained on module A's scene embeddings of spoken digits is also
applied to module B's embeddings (hear_dual.downstream.probe_agreement). Models are called the way heareval
calls them: a torch tensor on the model's device for a torch.nn.Module, tf.convert_to_tensor for a tf.Module.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys

import numpy as np

from hear_dual import datasets
from hear_dual.command import standalone
from hear_dual.hear_module import LoadedModule, embed, load_hear_module
from hear_dual.parity import agreement
from hear_dual.results import jsonable
from hear_dual.signals import SIGNAL_KINDS, signal_batch

METADATA = ("sample_rate", "timestamp_embedding_size", "scene_embedding_size")
SPEECH_INPUT = "fsdd_speech"
FSDD_MISSING = "FSDD not found"
DOWNSTREAM_CHUNK = 40


def _shape(x) -> list[int]:
    return [int(d) for d in np.shape(x)]


def _compare_input(name: str, audio: np.ndarray, a: LoadedModule, b: LoadedModule, tol: float,
                   min_cosine: float) -> dict:
    row = {"input": name, "n_sounds": int(audio.shape[0]), "n_samples": int(audio.shape[1]), "error": None,
           "shapes_a": None, "shapes_b": None, "shapes_equal": False, "timestamp_embeddings": None,
           "scene_embeddings": None, "timestamps_equal": False, "max_timestamp_diff_ms": None, "passed": False}
    outputs = []
    for label, loaded in (("A", a), ("B", b)):
        try:
            outputs.append(embed(loaded, audio))
        except Exception as e:  # a module that crashes on an input fails that input, the comparison goes on
            row["error"] = f"{label} ({loaded.name}) raised {type(e).__name__}: {e}"
            return row
    (ea, ta, sa), (eb, tb, sb) = outputs
    names = ("timestamp_embeddings", "timestamps", "scene_embeddings")
    row["shapes_a"] = dict(zip(names, map(_shape, (ea, ta, sa)), strict=True))
    row["shapes_b"] = dict(zip(names, map(_shape, (eb, tb, sb)), strict=True))
    row["shapes_equal"] = row["shapes_a"] == row["shapes_b"]
    if ea.shape == eb.shape:
        row["timestamp_embeddings"] = agreement(ea, eb, tol, min_cosine).as_dict()
    if sa.shape == sb.shape:
        row["scene_embeddings"] = agreement(sa, sb, tol, min_cosine).as_dict()
    if ta.shape == tb.shape:
        row["timestamps_equal"] = bool(np.array_equal(ta, tb))
        diff = np.abs(ta.astype(np.float64) - tb.astype(np.float64))
        row["max_timestamp_diff_ms"] = float(diff.max()) if diff.size else 0.0
    gates = (row["timestamp_embeddings"], row["scene_embeddings"])
    row["passed"] = bool(row["shapes_equal"] and row["timestamps_equal"] and all(g and g["passed"] for g in gates))
    return row


def _scene_in_chunks(loaded: LoadedModule, audio: np.ndarray) -> np.ndarray:
    return np.concatenate([embed(loaded, audio[i : i + DOWNSTREAM_CHUNK], scene_only=True)[2]
                           for i in range(0, len(audio), DOWNSTREAM_CHUNK)])


def _downstream(a: LoadedModule, b: LoadedModule, sample_rate: int, tol: float, min_cosine: float) -> dict:
    from hear_dual.downstream import fsdd_subset, probe_agreement

    subset = fsdd_subset(sample_rate)
    if subset is None:
        return {"skipped": FSDD_MISSING}
    audio, digits, speakers = subset
    try:
        scene_a, scene_b = _scene_in_chunks(a, audio), _scene_in_chunks(b, audio)
        result = {"task": "FSDD spoken digits, probe fit on A's scene embeddings", "n_clips": int(len(audio))}
        result |= probe_agreement(scene_a, scene_b, digits, groups=speakers)
    except ImportError as e:
        return {"skipped": str(e)}
    except Exception as e:
        return {"error": f"{type(e).__name__}: {e}"}
    if scene_a.shape == scene_b.shape:
        result["scene_embeddings"] = agreement(scene_a, scene_b, tol, min_cosine).as_dict()
    return result


def _metadata_value(model, key):
    value = getattr(model, key, None)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    return None if value is None else repr(value)


def compare_modules(name_a: str, name_b: str, weights_a: str = "", weights_b: str = "", tol: float = 2e-5,
                    min_cosine: float = 1 - 1e-8, lengths_s=(0.99, 2.74), batch: int = 3,
                    include_speech: bool = True) -> dict:
    """Run both HEAR modules on identical audio; a report dict of python types (see the module docstring)."""
    report = {"module_a": name_a, "module_b": name_b, "weights_a": weights_a, "weights_b": weights_b,
              "kind_a": None, "kind_b": None, "tol": float(tol), "min_cosine": float(min_cosine),
              "lengths_s": [float(x) for x in lengths_s], "batch": int(batch), "metadata": {}, "problems": [],
              "rows": [], "speech": None, "downstream": None, "passed": False}
    loaded = []
    for label, name, weights in (("a", name_a, weights_a), ("b", name_b, weights_b)):
        try:
            loaded.append(load_hear_module(name, weights))
            report[f"kind_{label}"] = loaded[-1].kind
        except Exception as e:
            report["problems"].append(f"cannot load module {label.upper()} {name!r}: {type(e).__name__}: {e}")
    if report["problems"]:
        return report
    a, b = loaded

    for key in METADATA:
        va, vb = _metadata_value(a.model, key), _metadata_value(b.model, key)
        report["metadata"][key] = {"a": va, "b": vb, "equal": va is not None and va == vb}
        for label, name, value in (("A", name_a, va), ("B", name_b, vb)):
            if not isinstance(value, int):
                report["problems"].append(f"model of {label} ({name}) has no integer attribute {key} (got {value})")
        if isinstance(va, int) and isinstance(vb, int) and va != vb:
            report["problems"].append(f"{key} differs: A ({name_a}) has {va}, B ({name_b}) has {vb}")
    if report["problems"]:
        return report

    sample_rate = report["metadata"]["sample_rate"]["a"]
    for kind, seconds in itertools.product(SIGNAL_KINDS, lengths_s):
        audio = signal_batch(kind, batch, max(1, int(round(seconds * sample_rate))), sample_rate)
        report["rows"].append(_compare_input(f"{kind} {seconds:g}s", audio, a, b, tol, min_cosine))

    if not include_speech:
        report["speech"] = report["downstream"] = {"skipped": "speech disabled"}
    elif datasets.fsdd_dir() is None:
        report["speech"] = report["downstream"] = {"skipped": FSDD_MISSING}
    else:
        speech = datasets.fsdd_batch(sample_rate, batch, seed=0)
        report["rows"].append(_compare_input(SPEECH_INPUT, speech, a, b, tol, min_cosine))
        report["speech"] = {"n_clips": int(len(speech))}
        report["downstream"] = _downstream(a, b, sample_rate, tol, min_cosine)
    report["passed"] = bool(report["rows"]) and all(row["passed"] for row in report["rows"])
    return report


# ---------------------------------------------------------------- the report as text

def _num(x, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


GATE_HEAD = f"{'max abs':>9}  {'max rel':>9}  {'min cosine':>13}"


def _gate_cells(result: dict | None) -> str:
    if result is None:
        return f"{'(shapes differ)':<{len(GATE_HEAD)}}"
    return f"{_num(result['max_abs_diff'], '9.2e')}  {_num(result['max_rel_diff'], '9.2e')}  " \
        f"{_num(result['min_cosine'], '13.10f')}"


def _verdict(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def _downstream_line(down: dict | None) -> str:
    if not down:
        return "downstream: not run"
    if "skipped" in down:
        return f"downstream: skipped ({down['skipped']})"
    if "error" in down:
        return f"downstream: error ({down['error']})"
    held = f", speaker {down['held_out_group']} held out" if "held_out_group" in down else ""
    return (f"downstream: {down['task']}{held} ({down['n_train']} train / {down['n_test']} test clips): "
            f"accuracy A {down['accuracy_a']:.3f}, B {down['accuracy_b']:.3f}, identical predictions "
            f"{100 * down['identical_predictions']:.1f}% "
            f"({down['n_differing_predictions']} of {down['n_test']} differ)")


def format_report(report: dict) -> str:
    a = f"{report['module_a']} ({report['kind_a'] or '?'})"
    b = f"{report['module_b']} ({report['kind_b'] or '?'})"
    lines = [f"HEAR module comparison: A = {a}  vs  B = {b}"]
    meta = report["metadata"]
    if meta:
        lines.append(", ".join(f"{key} {v['a']}" if v["equal"] else f"{key} A {v['a']} / B {v['b']}"
                               for key, v in meta.items()))
    lines.append(f"gate: max rel diff <= {report['tol']:g} and min cosine >= {report['min_cosine']:.10g}, "
                 "timestamps identical, shapes equal")
    lines += [f"problem: {p}" for p in report["problems"]]
    rows = report["rows"]
    if rows:
        width = max(len("input"), *(len(r["input"]) for r in rows))
        stamp_head, scene_head = f"{GATE_HEAD}  {'timestamps':>10}  gate", f"{GATE_HEAD}  gate"
        groups = f"{'timestamp embeddings':^{len(stamp_head)}} | {'scene embeddings':^{len(scene_head)}}"
        lines += ["",
                  f"{'':<{width}} | {groups}".rstrip(),
                  f"{'input':<{width}} | {stamp_head} | {scene_head}"]
        lines.append("-" * len(lines[-1]))
        for r in rows:
            if r["error"]:
                lines.append(f"{r['input']:<{width}} | ERROR: {r['error']}")
                continue
            stamp, scene = r["timestamp_embeddings"], r["scene_embeddings"]
            times = "equal" if r["timestamps_equal"] else (
                "differ" if r["max_timestamp_diff_ms"] is None else f"{r['max_timestamp_diff_ms']:.3g} ms")
            line = (f"{r['input']:<{width}} | {_gate_cells(stamp)}  {times:>10}  "
                    f"{_verdict(bool(stamp and stamp['passed'] and r['timestamps_equal'])):4} | "
                    f"{_gate_cells(scene)}  {_verdict(bool(scene and scene['passed'])):4}")
            if not r["shapes_equal"]:
                line += f"  shapes A {r['shapes_a']} B {r['shapes_b']}"
            lines.append(line.rstrip())
        lines.append("")
    lines.append(_downstream_line(report["downstream"]))
    failed = [r["input"] for r in rows if not r["passed"]]
    if report["passed"]:
        verdict = f"PASS (all {len(rows)} inputs agree)"
    elif failed:
        shown = ", ".join(failed[:8]) + (", ..." if len(failed) > 8 else "")
        verdict = f"FAIL ({len(failed)} of {len(rows)} inputs disagree: {shown})"
    else:
        verdict = "FAIL (" + ("; ".join(report["problems"]) or "no inputs compared") + ")"
    lines.append(f"overall: {verdict}")
    return "\n".join(lines)


# ---------------------------------------------------------------- command line

def cmd_compare(args) -> int:
    report = compare_modules(args.module_a, args.module_b, weights_a=args.weights_a, weights_b=args.weights_b,
                             tol=args.tol, min_cosine=args.min_cosine, lengths_s=tuple(args.lengths),
                             batch=args.batch, include_speech=not args.no_speech)
    print(json.dumps(jsonable(report), indent=2, allow_nan=False) if args.json else format_report(report))
    return 0 if report["passed"] else 1


def add_compare_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "compare", help="compare any two HEAR 2021 modules (e.g. a torch and a TF port) on identical audio",
        description="Import two HEAR 2021 modules by name, feed both identical deterministic audio (and FSDD speech "
                    "when present) and check that embeddings, timestamps and shapes agree. Exit 0 on pass, 1 on "
                    "failure.")
    parser.add_argument("module_a", metavar="MODULE_A",
                        help="import name of the reference module, e.g. hear_dual.torch_impl")
    parser.add_argument("module_b", metavar="MODULE_B", help="import name of the module compared with it")
    parser.add_argument("--weights-a", default="", metavar="P", help="passed to MODULE_A.load_model (default: none)")
    parser.add_argument("--weights-b", default="", metavar="P", help="passed to MODULE_B.load_model (default: none)")
    parser.add_argument("--tol", type=float, default=2e-5, metavar="T",
                        help="max |A - B| / max(1, max|A|) (default 2e-5)")
    parser.add_argument("--min-cosine", type=float, default=1 - 1e-8, metavar="C",
                        help="minimum cosine between embedding vectors (default 1 - 1e-8)")
    parser.add_argument("--lengths", type=float, nargs="+", default=[0.99, 2.74], metavar="S",
                        help="lengths of the generated test sounds in seconds (default 0.99 2.74)")
    parser.add_argument("--batch", type=int, default=3, help="sounds per input batch (default 3)")
    parser.add_argument("--no-speech", action="store_true", help="skip FSDD speech and the downstream probe")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=cmd_compare)
    return parser


def main(argv=None) -> int:
    """`hear-dual compare` on its own (`python -m hear_dual.compare`): argv holds the arguments after `compare`."""
    return standalone("compare", add_compare_parser, argv)


if __name__ == "__main__":
    sys.exit(main())
