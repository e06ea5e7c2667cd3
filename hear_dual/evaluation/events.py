"""Between events and frames, as heareval does it (heareval/embeddings/task_embeddings.py and
heareval/predictions/task_predictions.py, 2021.1.3).

Targets: a frame at timestamp t (ms) carries every label whose event has start <= t < end + 0.0001 (heareval's
interval tree adds 0.0001 ms so that a frame exactly at the end is inside).

Predictions: per file, frame probabilities are median-filtered over time (scipy.ndimage.median_filter, a window
of round(median_filter_ms / mean frame hop) frames, reflecting at the edges), thresholded at > 0.5, and every
run of consecutive active frames of a label becomes one event from the first to the last frame's timestamp,
kept when end - start >= min_duration ms. The postprocessing grid below is heareval's default; a task's
task_metadata.json may give its own in evaluation_params.event_postprocessing_grid.
"""

from __future__ import annotations

import numpy as np

EVENT_POSTPROCESSING_GRID = {"median_filter_ms": [250], "min_duration": [125, 250]}
THRESHOLD = 0.5


def frame_targets(events: list[dict], timestamps: np.ndarray, vocabulary: list[str]) -> np.ndarray:
    """(T, C) multi-hot targets of one file's frames."""
    index = {label: i for i, label in enumerate(vocabulary)}
    y = np.zeros((len(timestamps), len(vocabulary)), np.float32)
    for event in events:
        inside = (timestamps >= event["start"]) & (timestamps < event["end"] + 0.0001)
        y[inside, index[str(event["label"])]] = 1.0
    return y


def postprocessing_grid(metadata: dict) -> list[tuple[tuple[str, float], ...]]:
    """The grid points, each a tuple of (name, value) pairs in sklearn.model_selection.ParameterGrid order."""
    from sklearn.model_selection import ParameterGrid

    grid = metadata.get("evaluation_params", {}).get("event_postprocessing_grid", EVENT_POSTPROCESSING_GRID)
    return [tuple(point.items()) for point in ParameterGrid(grid)]


def to_events(probabilities: np.ndarray, timestamps: np.ndarray, vocabulary: list[str], median_filter_ms: float,
              min_duration: float) -> list[dict]:
    """One file's (T, C) frame probabilities -> [{"label", "start", "end"}] sorted by start."""
    from scipy.ndimage import median_filter

    order = np.argsort(timestamps, kind="stable")
    timestamps, probabilities = np.asarray(timestamps, np.float64)[order], probabilities[order]
    if median_filter_ms and len(timestamps) > 1:
        width = int(round(median_filter_ms / np.mean(np.diff(timestamps))))
        if width:
            probabilities = median_filter(probabilities, size=(width, 1))
    active = probabilities > THRESHOLD
    events = []
    for c in range(active.shape[1]):
        # runs of consecutive active frames: where the padded 0/1 sequence steps up (start) and down (end)
        steps = np.diff(np.concatenate([[0], active[:, c].astype(np.int8), [0]]))
        for first, last in zip(np.flatnonzero(steps == 1), np.flatnonzero(steps == -1) - 1):
            start, end = float(timestamps[first]), float(timestamps[last])
            if end - start >= min_duration:
                events.append({"label": vocabulary[c], "start": start, "end": end})
    return sorted(events, key=lambda e: e["start"])
