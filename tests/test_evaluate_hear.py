"""HEAR task folders: make-task, reading and checking them, heareval's grid and splits, and end-to-end runs."""

import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from hear_dual import datasets, evaluate
from hear_dual.evaluation import embeddings, protocol
from hear_dual.evaluation.maketask import make_task
from hear_dual.evaluation.models import load, model_ref
from hear_dual.evaluation.run import evaluate_task
from hear_dual.evaluation.synthetic import write_event_clips
from hear_dual.evaluation.tasks import TaskFolderError, read_task

HAVE_FSDD = datasets.fsdd_dir() is not None
# heareval's own first eight grid points (seed_everything(42); random.shuffle(list(ParameterGrid(PARAM_GRID)))),
# printed by heareval 2021.1.3 itself: (hidden_layers, lr, initialization)
HEAREVAL_GRID = [(1, 1e-4, "xavier_normal_"), (2, 1e-3, "xavier_uniform_"), (1, 1e-3, "xavier_normal_"),
                 (1, 3.2e-4, "xavier_normal_"), (2, 3.2e-4, "xavier_normal_"), (2, 3.2e-4, "xavier_uniform_"),
                 (2, 3.2e-3, "xavier_normal_"), (2, 3.2e-3, "xavier_uniform_")]
# small enough for CI, through heareval's own per-task override (evaluation_params.task_specific_param_grid)
SMALL_GRID = {"hidden_dim": [128], "max_epochs": [120], "patience": [5], "lr": [1e-3]}


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """low/ and high/ tones at 22.05 kHz, 6 files each from speakers g0..g5, varied lengths."""
    root = tmp_path_factory.mktemp("labelled")
    rng = np.random.default_rng(0)
    for label, freq in (("low", 300.0), ("high", 2500.0)):
        (root / label).mkdir()
        for k in range(6):
            t = np.arange(int(22050 * (0.3 + 0.05 * k))) / 22050
            sf.write(root / label / f"{label}_g{k}_{k}.wav", 0.3 * np.sin(2 * np.pi * freq * t)
                     + 0.01 * rng.standard_normal(len(t)), 22050)
    return root


@pytest.fixture(scope="module")
def scene_task(labelled, tmp_path_factory):
    return make_task(labelled, tmp_path_factory.mktemp("tasks") / "tones", "tones", sample_rates=(16000, 8000),
                     duration=0.5, folds=3, group_pattern=r"_(g\d)_")


def test_make_task_writes_hearpreprocess_layout(scene_task, labelled):
    task = read_task(scene_task)
    assert task.embedding_type == "scene" and task.prediction_type == "multiclass"
    assert task.vocabulary == ["high", "low"] and task.metadata["splits"] == ["fold00", "fold01", "fold02"]
    assert task.scores == ["top1_acc"] and task.metadata["sample_duration"] == 0.5
    names = [name for split in task.labels.values() for name in split]
    assert sorted(names) == sorted(f"{lab}__{lab}_g{k}_{k}.wav" for lab in ("low", "high") for k in range(6))
    for split, labels in task.labels.items():
        groups = {name.split("_g")[1][0] for name in labels}
        for other, other_labels in task.labels.items():      # --group-pattern: a speaker is in one fold only
            if other != split:
                assert not groups & {name.split("_g")[1][0] for name in other_labels}
        for rate in (16000, 8000):
            for name, (label,) in labels.items():
                info = sf.info(scene_task / str(rate) / split / name)
                assert (info.samplerate, info.frames, info.subtype) == (rate, rate // 2, "PCM_16")
                assert name.startswith(label)
    # heareval's k-fold rotation: test fold i, valid fold i+1, train the rest
    assert task.data_splits() == [{"train": ["fold02"], "valid": ["fold01"], "test": ["fold00"]},
                                  {"train": ["fold00"], "valid": ["fold02"], "test": ["fold01"]},
                                  {"train": ["fold01"], "valid": ["fold00"], "test": ["fold02"]}]
    with pytest.raises(ValueError, match="already holds a task"):
        make_task(labelled, scene_task, "again")


def test_make_task_events_are_trimmed_to_the_duration(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for k in range(10):
        sf.write(src / f"c{k}.wav", np.zeros(16000, np.float32), 16000)
    (src / "events.csv").write_text("file,label,onset,offset\nc0.wav,beep,0.2,0.9\nc1.wav,buzz,0.5,0.7\n"
                                    "c1.wav,beep,0.85,1.0\n")
    out = make_task(src, tmp_path / "ev", "ev", duration=0.8, events_csv=src / "events.csv", valid=0.2, test=0.2)
    task = read_task(out)
    assert task.embedding_type == "event" and task.metadata["split_mode"] == "trainvaltest"
    assert task.scores == ["event_onset_200ms_fms", "segment_1s_er"]
    assert [len(task.labels[s]) for s in ("train", "valid", "test")] == [6, 2, 2]
    merged = {name: ev for split in task.labels.values() for name, ev in split.items()}
    assert merged["c0.wav"] == [{"label": "beep", "start": 200.0, "end": 800.0}]        # cut at 0.8 s
    assert merged["c1.wav"] == [{"label": "buzz", "start": 500.0, "end": 700.0}]        # beep starts after 0.8 s
    assert merged["c5.wav"] == []
    (src / "bad.csv").write_text("file,label,onset\nc0.wav,beep,0.2\n")
    with pytest.raises(ValueError, match="expected the columns file, label, onset, offset"):
        make_task(src, tmp_path / "bad", "bad", events_csv=src / "bad.csv")


def _copy(task_dir, tmp_path):
    return shutil.copytree(task_dir, tmp_path / "copy")


def test_bad_task_folders_say_what_was_expected(scene_task, tmp_path, labelled):
    with pytest.raises(TaskFolderError, match="no task_metadata.json .expected task_metadata.json, labelvocab"):
        read_task(labelled)
    bad = _copy(scene_task, tmp_path)
    fold = json.loads((bad / "fold01.json").read_text())
    fold[next(iter(fold))] = ["middle"]
    (bad / "fold01.json").write_text(json.dumps(fold))
    with pytest.raises(TaskFolderError, match="has label 'middle', which is not in labelvocabulary.csv .2 labels: "
                                              "high, low"):
        read_task(bad)
    shutil.copy(scene_task / "fold01.json", bad / "fold01.json")
    meta = json.loads((scene_task / "task_metadata.json").read_text())
    for change, message in ((("split_mode", "five_fold"), "split_mode: 'five_fold' is not one of"),
                            (("evaluation", ["accuracy"]), r"unknown score\(s\) \['accuracy'\]"),
                            (("evaluation", ["segment_1s_er"]), "do not apply to scene tasks"),
                            (("splits", ["fold00", "fold01", "fold09"]), "fold09.json is missing")):
        (bad / "task_metadata.json").write_text(json.dumps(meta | dict([change])))
        with pytest.raises(TaskFolderError, match=message):
            read_task(bad)
    task = read_task(scene_task)
    with pytest.raises(TaskFolderError, match="runs at 44100 Hz but there is no folder 44100/fold00; the task has "
                                              "audio at 16000, 8000 Hz"):
        task.audio_dir(44100, "fold00")
    assert evaluate.main(["hear_dual.baselines", str(labelled), "--out", str(tmp_path / "o")]) == 2


def test_grid_points_are_heareval_s():
    points = protocol.grid_points({"task_name": "any"})
    assert [(c["hidden_layers"], c["lr"], c["initialization"]) for c in points] == HEAREVAL_GRID
    assert {c["check_val_every_n_epoch"] for c in protocol.grid_points({"task_name": "dcase2016_task2"})} == {10}
    small = protocol.grid_points({"task_name": "x", "evaluation_params": {"task_specific_param_grid": SMALL_GRID}})
    assert {(c["hidden_dim"], c["max_epochs"], c["patience"], c["lr"]) for c in small} == {(128, 120, 5, 1e-3)}
    assert embeddings.heareval_batch_size(0.56, 16000) == 149 and embeddings.heareval_batch_size(None, 16000) == 1
    assert embeddings.heareval_batch_size(120.0, 48000) == 1


def test_embedding_cache_resumes_after_an_interruption(scene_task, tmp_path, monkeypatch):
    loaded = load(model_ref("logmel-stats"))
    task = read_task(scene_task)
    monkeypatch.setattr(embeddings, "CHUNK_FILES", 2)
    monkeypatch.setattr(embeddings, "heareval_batch_size", lambda *_: 1)
    real, calls, resuming = embeddings._chunk, [], False

    class Interrupted(Exception):
        pass

    def interrupted(*args):
        calls.append(1)
        if len(calls) == 2 and not resuming:
            raise Interrupted
        return real(*args)

    monkeypatch.setattr(embeddings, "_chunk", interrupted)
    split = "fold00"
    n_files = len(task.labels[split])
    with pytest.raises(Interrupted):
        embeddings.embed_split(loaded, task, split, tmp_path)
    assert len(list(tmp_path.glob("*/chunk-*.npz"))) == 1              # the first chunk was kept
    calls.clear()
    resuming = True
    resumed = embeddings.embed_split(loaded, task, split, tmp_path)
    assert len(calls) == -(-n_files // 2) - 1 and not resumed.cached    # every chunk but the first
    again = embeddings.embed_split(loaded, task, split, tmp_path)
    assert again.cached and len(calls) == -(-n_files // 2) - 1
    fresh = embeddings.embed_split(loaded, task, split, tmp_path, use_cache=False)
    np.testing.assert_array_equal(np.stack(again.embeddings), np.stack(fresh.embeddings))
    assert again.files == list(task.labels[split])


@pytest.fixture(scope="module")
def ci_tasks(tmp_path_factory):
    """A scene task from FSDD (36 recordings of 3 digits, 3 folds) and a generated event task (40 clips of 1 s)."""
    root = tmp_path_factory.mktemp("ci_tasks")
    write_event_clips(root / "events_src", 40, seconds=1.0, seed=3)
    event = make_task(root / "events_src", root / "tasks" / "events", "events", duration=1.0,
                      events_csv=root / "events_src" / "events.csv", valid=0.2, test=0.2)
    fsdd = root / "fsdd"
    fsdd.mkdir()
    for name in sorted(datasets.fsdd_dir().glob("[012]_*_[0-5].wav"))[::3]:
        shutil.copy(name, fsdd)
    scene = make_task(fsdd, root / "tasks" / "digits", "digits", duration=0.56, folds=3, label_pattern=r"^(\d)_")
    for task in (scene, event):
        meta = json.loads((task / "task_metadata.json").read_text())
        meta["evaluation_params"] = {"task_specific_param_grid": SMALL_GRID}
        (task / "task_metadata.json").write_text(json.dumps(meta))
    return root / "tasks"


@pytest.mark.skipif(not HAVE_FSDD, reason="FSDD not found (see hear_dual.datasets.fsdd_dir)")
def test_hear_tasks_end_to_end_torch_and_tf(ci_tasks, tmp_path, capsys):
    out = tmp_path / "results"
    for module in ("hear_dual.torch_impl", "hear_dual.tf_impl"):
        assert evaluate.main([module, str(ci_tasks), "--grid-points", "1", "--out", str(out),
                              "--cache-dir", str(tmp_path / "cache")]) == 0
    results = {(r["task"], r["model"]["kind"]): r for r in (json.loads(p.read_text()) for p in out.glob("*/*.json"))}
    assert sorted(results) == [("digits", "tf"), ("digits", "torch"), ("events", "tf"), ("events", "torch")]
    for (task, _kind), r in results.items():
        assert r["protocol"] == {"grid": "default", "grid_points": 1, "seed": 42} and len(r["grid"]) == 1
        assert r["best_conf"]["hidden_dim"] == 128 and r["embedding_size"] == (1024 if task == "digits" else 512)
    digits = {kind: results[("digits", kind)] for kind in ("torch", "tf")}
    events = {kind: results[("events", kind)] for kind in ("torch", "tf")}
    for r in digits.values():
        assert len(r["folds"]) == 3 and r["n_files"] == {"fold00": 12, "fold01": 12, "fold02": 12}
        assert r["aggregate"]["top1_acc"]["mean"] > 1 / 3 + 0.15          # 3 digits: chance is 1/3
    for r in events.values():
        assert len(r["folds"]) == 1 and r["folds"][0]["postprocessing"]["median_filter_ms"] == 250
        assert r["aggregate"]["event_onset_200ms_fms"]["mean"] > 0.3
        assert r["aggregate"]["segment_1s_er"]["mean"] < 1.0
        stamps = r["examples"][0]["timestamps"]
        assert len(r["examples"]) == 4 and len(stamps) == r["n_rows"]["test"] / 8 and stamps[-1] <= 1000
    # same seed, embeddings within the parity gate: the two backends score alike (within fold noise)
    for name in ("top1_acc",):
        a, b = (digits[k]["aggregate"][name] for k in ("torch", "tf"))
        assert abs(a["mean"] - b["mean"]) <= max(0.05, a["std"])
    for name in ("event_onset_200ms_fms", "segment_1s_er"):
        a, b = (events[k]["aggregate"][name]["mean"] for k in ("torch", "tf"))
        assert abs(a - b) <= 0.1
    table = (out / "results.md").read_text()
    assert "### digits" in table and "### events" in table and table.count("| hear_dual.t") == 4
    assert len(json.loads((out / "results.json").read_text())) == 4
    pytest.importorskip("matplotlib")
    assert len(list(out.glob("events/*.events.png"))) == 2
    capsys.readouterr()
    # a finished result is kept, not recomputed
    assert evaluate.main(["hear_dual.torch_impl", str(ci_tasks / "events"), "--grid-points",
                          "1", "--out", str(out), "--cache-dir", str(tmp_path / "cache")]) == 0
    assert "done before, kept" in capsys.readouterr().err


def test_test_scores_are_the_score_functions_on_the_saved_predictions(ci_tasks, tmp_path, monkeypatch):
    """The runner's test scores equal the score functions applied to its own saved test predictions."""
    from hear_dual.evaluation import run, scores

    monkeypatch.setattr(run, "EXAMPLE_CLIPS", 100)                 # keep every test clip's predictions
    task = read_task(ci_tasks / "events")
    result = evaluate_task(load(model_ref("logmel-stats")), task, n_grid_points=1, cache_dir=tmp_path)
    fold, = result["folds"]
    assert fold["test"] == ["test"] and fold["valid"] == ["valid"]
    predicted = {ex["file"]: ex["predicted"] for ex in result["examples"]}
    assert sorted(predicted) == sorted(task.labels["test"])
    onset = scores.event_based(predicted, task.labels["test"], 0.2)
    assert fold["test_scores"]["event_onset_200ms_fms"] == pytest.approx(onset["f_measure"])
    assert fold["test_scores"]["event_onset_200ms_fms_recall"] == pytest.approx(onset["recall"])
    segment = scores.segment_based(predicted, task.labels["test"], task.vocabulary)["error_rate"]
    assert fold["test_scores"]["segment_1s_er"] == pytest.approx(segment)
