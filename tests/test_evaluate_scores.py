"""hear_dual.evaluation.scores and .events against hand-computed cases (the definitions heareval uses)."""

import math
from statistics import NormalDist

import numpy as np
import pytest

from hear_dual.evaluation import events, scores

PRED = np.array([[0.9, 0.2], [0.8, 0.7], [0.3, 0.6], [0.1, 0.4]])
MULTI = np.array([[1, 0], [0, 1], [1, 0], [0, 1]])          # class 0: rows 0, 2; class 1: rows 1, 3


def test_scene_scores_by_hand():
    # argmax per row 0, 0, 1, 1 against targets 0, 1, 0, 1: rows 0 and 3 right
    assert scores.top1_acc(PRED, MULTI) == 0.5
    # class 0 ranks rows 0(+) 1(-) 2(+) 3(-): AP = (1/1 + 2/3) / 2; class 1 ranks 1(+) 2(-) 3(+) 0(-): the same
    assert scores.mean_average_precision(PRED, MULTI) == pytest.approx((1 + 2 / 3) / 2)
    # class 0: positives 0.9, 0.3 over negatives 0.8, 0.1: 3 of 4 pairs ordered; class 1: 0.7, 0.4 over 0.2, 0.6: 3/4
    assert scores.aucroc(PRED, MULTI) == pytest.approx(0.75)
    assert scores.d_prime(PRED, MULTI) == pytest.approx(math.sqrt(2) * NormalDist().inv_cdf(0.75))
    no_negative = np.array([[1, 0], [1, 1], [1, 0], [1, 1]])
    assert math.isnan(scores.d_prime(PRED, no_negative)) and math.isnan(scores.aucroc(PRED, no_negative))
    chroma = np.zeros((2, 14))
    chroma[0, 13], chroma[1, 2] = 1, 1                       # predicted 13 and 2
    truth = np.zeros((2, 14))
    truth[0, 1], truth[1, 3] = 1, 1                          # true 1 (= 13 - 12: an octave error) and 3
    assert scores.chroma_acc(chroma, truth) == 0.5 and scores.top1_acc(chroma, truth) == 0.0


def _e(label, start_s, end_s):
    return {"label": label, "start": 1000 * start_s, "end": 1000 * end_s}


def test_event_onset_f_measure_by_hand():
    target = {"a.wav": [_e("beep", 1.0, 2.0), _e("beep", 1.15, 1.5), _e("buzz", 3.0, 3.5)],
              "b.wav": [],
              "c.wav": [_e("beep", 0.0, 1.0)]}                # not predicted at all: heareval does not score it
    predicted = {"a.wav": [_e("beep", 1.1, 1.3),              # within 0.2 s of both beep onsets
                           _e("beep", 0.9, 1.2),              # within 0.2 s of the first only
                           _e("buzz", 3.3, 3.5),              # 0.3 s late
                           _e("hiss", 3.0, 3.5)],             # right time, wrong label
                 "b.wav": [_e("beep", 0.0, 0.5)]}
    # a greedy match (first estimate to first reference) finds 1 hit; the maximum matching finds 2
    got = scores.event_based(predicted, target, t_collar=0.2)
    n_tp, n_sys, n_ref = 2, 5, 3
    assert got["precision"] == pytest.approx(n_tp / n_sys) and got["recall"] == pytest.approx(n_tp / n_ref)
    assert got["f_measure"] == pytest.approx(2 * n_tp / (n_sys + n_ref))
    value, parts = scores.compute("event_onset_200ms_fms", predicted, target, ["beep", "buzz", "hiss"])
    assert value == pytest.approx(0.5) and parts["event_onset_200ms_fms_recall"] == pytest.approx(2 / 3)
    # within 50 ms only the estimate at 1.1 s and the reference at 1.15 s match
    assert scores.compute("event_onset_50ms_fms", predicted, target, [])[0] == pytest.approx(2 * 1 / (5 + 3))
    assert scores.event_based({"b.wav": []}, target, 0.2)["f_measure"] == 0.0         # nothing at all: 0, not NaN


def test_event_onset_offset_tolerance_by_hand():
    target = {"a.wav": [_e("beep", 1.0, 2.0)]}              # 1 s long: offset tolerance max(0.05, 20% of 1 s)
    near = {"a.wav": [_e("beep", 1.02, 1.85)]}
    far = {"a.wav": [_e("beep", 1.02, 1.7)]}
    name = "event_onset_offset_50ms_20perc_fms"
    assert scores.compute(name, near, target, ["beep"])[0] == pytest.approx(1.0)
    assert scores.compute(name, far, target, ["beep"])[0] == 0.0
    assert scores.compute("event_onset_50ms_fms", far, target, ["beep"])[0] == pytest.approx(1.0)


def test_segment_error_rate_by_hand():
    target = {"a.wav": [_e("beep", 0.5, 1.5), _e("buzz", 2.2, 2.4), _e("hiss", 2.0, 2.5)]}
    predicted = {"a.wav": [_e("beep", 0.2, 0.8), _e("hiss", 2.1, 2.9), _e("buzz", 3.5, 3.6)]}
    # 1-s segments 0..3 (the last offset is 3.6 s): ref {beep} {beep} {buzz, hiss} {} vs est {beep} {} {hiss} {buzz}
    # segment 1: one deletion; segment 2: N_ref 2, N_sys 1, one hit -> one deletion; segment 3: one insertion
    value, parts = scores.compute("segment_1s_er", predicted, target, ["beep", "buzz", "hiss"])
    assert value == pytest.approx((0 + 2 + 1) / 4) and parts == {"segment_1s_er_error_rate": value}
    assert not scores.SCORES["segment_1s_er"].maximize


def test_frames_to_events_median_filter_and_minimum_duration():
    stamps = np.arange(20) * 50.0
    probs = np.full((20, 2), 0.1)
    probs[2:10, 0] = 0.9
    probs[5, 0] = 0.1                                         # a one-frame dip
    probs[12:14, 1] = 0.9                                     # two frames: 50 ms
    vocab = ["beep", "buzz"]
    # a 250 ms median (5 frames) fills the dip and removes the two-frame blip; frames 2..9 stay: 100 to 450 ms
    assert events.to_events(probs, stamps, vocab, 250, 125) == [{"label": "beep", "start": 100.0, "end": 450.0}]
    # no filter: the dip splits the event into 100-200 ms (too short for 125 ms) and 300-450 ms; the blip is too short
    assert events.to_events(probs, stamps, vocab, 0, 125) == [{"label": "beep", "start": 300.0, "end": 450.0}]
    assert events.to_events(probs, stamps, vocab, 0, 0)[0] == {"label": "beep", "start": 100.0, "end": 200.0}


def test_frame_targets_include_both_ends():
    y = events.frame_targets([{"label": "b", "start": 100, "end": 200}], np.array([50.0, 100, 150, 200, 250]),
                             ["a", "b"])
    np.testing.assert_array_equal(y, [[0, 0], [0, 1], [0, 1], [0, 1], [0, 0]])
    assert events.postprocessing_grid({}) == [(("median_filter_ms", 250), ("min_duration", 125)),
                                              (("median_filter_ms", 250), ("min_duration", 250))]
