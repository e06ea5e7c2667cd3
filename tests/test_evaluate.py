"""hear_dual.evaluate (shallow-probe evaluation), hear_dual.baselines (logmel-stats) and the randproj variant."""

import json

import numpy as np
import pytest
import soundfile as sf

from hear_dual import evaluate
from hear_dual.evaluation import labelled
from hear_dual.evaluation.labelled import PRESETS, generic_task, load_dataset, make_folds, resolve_task
from hear_dual.evaluation.models import model_ref

RATE = 22050          # not the models' rate: every file goes through soxr


def _tone(freq: float, seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture(scope="module")
def tone_folder(tmp_path_factory):
    """Two classes of clearly different tones, 10 files each, varied lengths, plus an unlabelled stray file."""
    root = tmp_path_factory.mktemp("tones")
    for label, base in (("low", 300.0), ("high", 3000.0)):
        (root / label).mkdir()
        for i in range(10):
            sf.write(root / label / f"{label}_{i}.wav", _tone(base * (1 + 0.02 * i), 0.4 + 0.05 * i, i), RATE)
    sf.write(root / "stray.wav", _tone(1000.0, 0.3, 99), RATE)
    (root / "notes.txt").write_text("not audio")
    return root


@pytest.fixture(scope="module")
def fake_fsdd(tmp_path_factory):
    root = tmp_path_factory.mktemp("fsdd")
    for digit in range(3):
        for speaker in ("george", "jackson", "theo"):
            for index in range(2):
                sf.write(root / f"{digit}_{speaker}_{index}.wav", _tone(200 + 100 * digit, 0.2, index), 8000)
    sf.write(root / "README.wav", _tone(100, 0.1, 0), 8000)
    return root


def test_fsdd_presets_parse_digit_speaker_and_index(fake_fsdd):
    digit = load_dataset(PRESETS["fsdd-digit"], fake_fsdd)
    assert len(digit.files) == 18 and digit.skipped == 1
    assert digit.classes == ["0", "1", "2"] and sorted(set(digit.groups)) == ["george", "jackson", "theo"]
    for path, label, group in zip(digit.files, digit.labels, digit.groups):
        assert path.name.startswith(f"{label}_{group}_")
    speaker = load_dataset(PRESETS["fsdd-speaker"], fake_fsdd)
    assert speaker.classes == ["george", "jackson", "theo"] and speaker.groups is None
    assert PRESETS["fsdd-digit"].grouped and PRESETS["fsdd-digit"].folds is None
    assert not PRESETS["fsdd-speaker"].grouped and PRESETS["fsdd-speaker"].folds == 5
    # each speaker held out in turn: one fold per speaker, one speaker per test fold
    folds = make_folds(PRESETS["fsdd-digit"], digit.labels, digit.groups)
    assert [sorted(set(digit.groups[test])) for _, test in folds] == [["george"], ["jackson"], ["theo"]]


def test_folder_labels_and_generic_pattern(tone_folder):
    ds = load_dataset(resolve_task("tones"), tone_folder)
    assert ds.classes == ["high", "low"] and len(ds.files) == 20 and ds.skipped == 1    # stray.wav at the root
    assert all(path.parent.name == label for path, label in zip(ds.files, ds.labels))
    task = generic_task("by-name", label_pattern=r"^([a-z]+)_(\d+)\.wav$", label_group=1, group_group=2,
                        grouped=True, folds=5)
    ds = load_dataset(task, tone_folder)
    assert ds.classes == ["high", "low"] and sorted(set(ds.groups)) == [str(i) for i in range(10)]
    with pytest.raises(ValueError, match="--grouped needs"):
        generic_task("x", grouped=True)
    with pytest.raises(ValueError, match="has 1 group"):
        generic_task("x", label_pattern=r"(a)", label_group=2)
    with pytest.raises(FileNotFoundError, match="no file names matching"):
        load_dataset(generic_task("x", label_pattern=r"^nothing$", label_group=0), tone_folder)


@pytest.mark.parametrize("folds", [None, 3, 7])
def test_grouped_folds_never_share_a_group(folds):
    rng = np.random.default_rng(folds or 0)
    labels, groups = rng.integers(0, 4, 200).astype(str), rng.integers(0, 7, 200).astype(str)
    task = generic_task("g", label_pattern=r"(\w)(\w)", group_group=2, grouped=True, folds=folds)
    splits = make_folds(task, labels, groups)
    assert len(splits) == (folds or 7)
    tested = np.concatenate([test for _, test in splits])
    assert sorted(tested.tolist()) == list(range(200))          # every file tested exactly once
    for train, test in splits:
        assert not set(groups[train]) & set(groups[test])


def test_stratified_folds_need_enough_files_per_class():
    with pytest.raises(ValueError, match="fewer than the 5 stratified folds"):
        make_folds(generic_task("s"), np.array(["a"] * 10 + ["b"] * 3))


def test_logmel_stats_separates_tones_and_shuffled_labels_do_not(tone_folder, tmp_path):
    kwargs = {"data": str(tone_folder), "cache_dir": tmp_path, "seed": 0}
    report = labelled.evaluate(["logmel-stats", "randproj"], ["tones"], **kwargs)
    results = {m["name"]: m["results"]["tones"] for m in report["models"]}
    assert report["tasks"]["tones"]["n_folds"] == 5 and report["tasks"]["tones"]["n_files"] == 20
    for name in ("logmel-stats", "randproj"):
        assert results[name]["mean"] >= 0.9, results
        assert len(results[name]["fold_accuracies"]) == 5
    control = labelled.evaluate(["logmel-stats"], ["tones"], shuffle_labels=True, **kwargs)
    shuffled = control["models"][0]["results"]["tones"]
    assert control["models"][0]["cached"]["tones"]          # same files, same model: straight from the cache
    assert shuffled["mean"] <= 0.75, shuffled
    text = labelled.format_table(report)
    assert "logmel-stats" in text and "randproj" in text and " ± " in text


def test_second_run_reads_the_cache(tone_folder, tmp_path, monkeypatch):
    calls = []
    real = labelled.embed_clips

    def counting(*args, **kwargs):
        if calls:
            raise AssertionError("embedded twice: the cache was not used")
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(labelled, "embed_clips", counting)
    first = labelled.evaluate(["logmel-stats"], ["tones"], data=str(tone_folder), cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    with np.load(next(tmp_path.glob("*.npz")), allow_pickle=False) as npz:     # no pickled objects
        assert npz["embeddings"].shape == (20, 128)
    second = labelled.evaluate(["logmel-stats"], ["tones"], data=str(tone_folder), cache_dir=tmp_path)
    assert second["models"][0]["cached"] == {"tones": True} and first["models"][0]["cached"] == {"tones": False}
    assert second["models"][0]["results"] == first["models"][0]["results"]
    with pytest.raises(AssertionError, match="embedded twice"):
        labelled.evaluate(["logmel-stats"], ["tones"], data=str(tone_folder), cache_dir=tmp_path, use_cache=False)


def test_cli_json_output(tone_folder, tmp_path, capsys):
    rc = evaluate.main(["logmel-stats", str(tone_folder), "--task", "tones", "--label-from", "folder",
                        "--folds", "4", "--cache-dir", str(tmp_path), "--json"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    model, = report["models"]
    assert model["name"] == "logmel-stats" and model["kind"] in ("torch", "numpy")
    assert model["scene_embedding_size"] == 128 and report["tasks"]["tones"]["n_folds"] == 4
    result = model["results"]["tones"]
    assert set(result) >= {"fold_accuracies", "mean", "std"} and len(result["fold_accuracies"]) == 4
    assert evaluate.main(["logmel-stats", str(tmp_path / "absent"), "--task", "t"]) == 2


def test_references_resolve_to_shipped_checkpoints():
    import hear_dual.checkpoints

    assert model_ref("seeded-random").weights == hear_dual.checkpoints.path("seeded")
    assert model_ref("seeded-compact").weights == hear_dual.checkpoints.path("compact-seeded")
    assert model_ref("randproj").weights == hear_dual.checkpoints.path("randproj")
    assert model_ref("logmel-stats").module == "hear_dual.baselines"
    with pytest.raises(ValueError, match="fixed weights"):
        model_ref("randproj", "x.onnx")


def test_randproj_spec_and_checkpoint_in_every_backend():
    import hear_dual.checkpoints
    import hear_dual.onnx_impl
    import hear_dual.tf_impl
    import hear_dual.torch_impl
    from hear_dual.parity import to_numpy
    from hear_dual.spec import BUILTIN_VARIANTS, Spec

    assert "hear-dual-randproj" in BUILTIN_VARIANTS
    spec = Spec.builtin("hear-dual-randproj")
    assert spec.hop_ms == 50.0 and spec.scene_embedding_size == 4096 and spec.scene_pooling == ["mean"]
    assert [layer.op for layer in spec.layers] == ["conv1d"] and spec.layers[0].kernel_size == 1
    weights = hear_dual.checkpoints.path("randproj")
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 16000)).astype(np.float32)
    outputs = {}
    for backend in (hear_dual.torch_impl, hear_dual.tf_impl, hear_dual.onnx_impl):
        model = backend.load_model(weights)
        assert model.spec.name == "hear-dual-randproj" and model.scene_embedding_size == 4096
        emb, stamps = map(to_numpy, backend.get_timestamp_embeddings(audio, model))
        scene = to_numpy(backend.get_scene_embeddings(audio, model))
        assert emb.shape == (2, 20, 4096) and scene.shape == (2, 4096) and scene.dtype == np.float32
        np.testing.assert_array_equal(np.diff(stamps, axis=1), 50.0)
        assert stamps[0, 0] == 0.0
        outputs[backend.__name__] = scene
    ref = outputs["hear_dual.torch_impl"]
    for scene in outputs.values():
        assert np.abs(scene - ref).max() <= spec.tolerance * max(1.0, np.abs(ref).max())


def test_logmel_stats_module_follows_the_hear_api():
    import torch

    import hear_dual.baselines as baseline
    from hear_dual.spec import Spec

    model = baseline.load_model()
    assert model.sample_rate == 16000 and model.timestamp_embedding_size == 64 and model.scene_embedding_size == 128
    audio = np.random.default_rng(1).uniform(-1, 1, (3, 16000 + 17)).astype(np.float32)
    emb, stamps = baseline.get_timestamp_embeddings(audio, model)
    assert emb.shape == (3, 101, 64) and emb.dtype == np.float32 and stamps.shape == (3, 101)
    assert stamps.dtype == np.float32 and stamps[0, 0] == 0.0 and stamps[0, -1] == 1000.0
    np.testing.assert_allclose(np.diff(stamps, axis=1), 10.0)
    scene = baseline.get_scene_embeddings(audio, model)
    assert scene.shape == (3, 128) and scene.dtype == np.float32
    np.testing.assert_allclose(scene, np.concatenate([emb.mean(1), emb.std(1)], axis=1), rtol=1e-5, atol=1e-5)
    # torch in, torch out; same numbers
    scene_t = baseline.get_scene_embeddings(torch.from_numpy(audio), model)
    assert isinstance(scene_t, torch.Tensor) and scene_t.dtype == torch.float32
    np.testing.assert_array_equal(scene_t.numpy(), scene)
    # frame k is the hear-dual-base frontend's frame centred on sample k * 160
    from hear_dual.torch_impl.model import LogMel

    frontend = LogMel(Spec.builtin("hear-dual-base"))
    padded = np.pad(audio, ((0, 0), (240, 160 * 100 + 480 - 240 - audio.shape[1])))
    want = frontend(torch.from_numpy(padded)).transpose(1, 2).numpy()
    np.testing.assert_allclose(emb, want, atol=1e-5)
    with pytest.raises(ValueError, match="no weights"):
        baseline.load_model("weights.onnx")
    with pytest.raises(ValueError, match="2-D"):
        baseline.get_scene_embeddings(audio[0], model)


def test_row_space_poses_the_same_l2_problem_for_wide_embeddings():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    x = rng.standard_normal((80, 20)) @ rng.standard_normal((20, 600))       # 600-d, rank 20, 60 training rows
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    probe = labelled.make_probe("logreg").fit(x[:60], y[:60])
    assert probe[1].basis_.shape == (600, 20)                                 # the rank, not 600 columns
    # solved tightly, the rotated and the plain problem have the same optimum (up to the solver's tolerance)
    tight = {"max_iter": 100000, "tol": 1e-12}
    rotated = make_pipeline(StandardScaler(), labelled.RowSpace(), LogisticRegression(**tight)).fit(x[:60], y[:60])
    plain = make_pipeline(StandardScaler(), LogisticRegression(**tight)).fit(x[:60], y[:60])
    np.testing.assert_allclose(rotated.predict_proba(x[60:]), plain.predict_proba(x[60:]), atol=1e-6)
    np.testing.assert_allclose(probe.predict_proba(x[60:]), plain.predict_proba(x[60:]), atol=1e-2)
    narrow = labelled.make_probe("logreg").fit(x[:, :50], y)                  # not wider than the data: identity
    assert narrow[1].basis_ is None


def test_mlp_probe_option(tone_folder, tmp_path):
    report = labelled.evaluate(["logmel-stats"], ["tones"], data=str(tone_folder), cache_dir=tmp_path, probe="mlp")
    assert report["probe"] == "mlp" and "MLPClassifier(1024" in report["probe_settings"]
    assert report["models"][0]["results"]["tones"]["mean"] >= 0.9
    mlp = labelled.make_probe("mlp")[-1]
    assert mlp.hidden_layer_sizes == (1024,) and mlp.early_stopping and mlp.n_iter_no_change == 20
    with pytest.raises(ValueError, match="unknown probe"):
        labelled.make_probe("svm")


def test_cache_keys_on_the_checkpoint_content_not_its_name(tmp_path):
    """A short name names whatever file ships today: keyed by name, a retrained checkpoint would be scored with
    the embeddings of the previous one (it happened once, with "compact")."""
    import shutil

    from hear_dual.checkpoint import read_checkpoint
    from hear_dual.evaluation.models import load

    by_name = load(model_ref("hear_dual.torch_impl", "compact"))
    assert by_name.weights_id == read_checkpoint("compact").sha256
    copy = tmp_path / "renamed.onnx"
    shutil.copy(read_checkpoint("compact").path, copy)
    assert load(model_ref("hear_dual.torch_impl", str(copy))).weights_id == by_name.weights_id
    seeded = load(model_ref("seeded-compact")).weights_id
    assert seeded == read_checkpoint("compact-seeded").sha256 != by_name.weights_id


def test_bottleneck_keeps_only_the_top_principal_components():
    """The label lives in the lowest-variance direction after standardising (one informative dimension against
    three correlated ones): kept with no bottleneck or k=4, lost with k=1."""
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 100)
    shared = rng.standard_normal(200)
    x = np.column_stack([shared + 0.01 * rng.standard_normal(200) for _ in range(3)]
                        + [labels + 0.1 * rng.standard_normal(200)])
    folds = labelled.make_folds(labelled.generic_task("t", folds=5), labels.astype(str))
    assert labelled.cross_validate(x, labels, folds)["mean"] > 0.95
    assert labelled.cross_validate(x, labels, folds, bottleneck=4)["mean"] > 0.95
    assert labelled.cross_validate(x, labels, folds, bottleneck=1)["mean"] < 0.7
