"""Training, model folders and evaluation end to end, with tiny models on tiny datasets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import run_cli

from tuiplayer import modelstore
from tuiplayer.config import STEMS
from tuiplayer.errors import ModelError

TINY_UNET = ["--option", "base_filters=4", "--option", "depth=3", "--option", "max_filters=8",
             "--option", "convs_per_level=0"]


def write_dataset(root: Path, n_tracks: int, seconds: float = 6.0, seed: int = 0) -> Path:
    """Tracks whose stems are easy to tell apart: a high tone, clicks, a low tone, a square wave."""
    rng = np.random.default_rng(seed)
    rate = 44100
    t = np.arange(int(seconds * rate)) / rate
    for k in range(n_tracks):
        stems = {
            "vocals": 0.2 * np.sin(2 * np.pi * (600 + 40 * k) * t * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))),
            "drums": 0.3 * rng.standard_normal(len(t)) * (np.mod(t, 0.5) < 0.04),
            "bass": 0.3 * np.sin(2 * np.pi * (55 + 5 * k) * t),
            "other": 0.1 * np.sign(np.sin(2 * np.pi * (330 + 20 * k) * t)),
        }
        folder = root / f"track {k}"
        folder.mkdir(parents=True)
        mixture = np.zeros((len(t), 2), dtype=np.float32)
        for name in STEMS:
            stereo = np.stack([stems[name], 0.8 * stems[name]], axis=1).astype(np.float32)
            sf.write(folder / f"{name}.wav", stereo, rate, subtype="FLOAT")
            mixture += stereo
        sf.write(folder / "mixture.wav", mixture, rate, subtype="FLOAT")
    return root


@pytest.mark.slow
def test_train_writes_a_model_folder_that_eval_and_the_player_can_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write_dataset(tmp_path / "train", 3)
    valid = write_dataset(tmp_path / "valid", 2, seed=1)
    models = tmp_path / "models"
    monkeypatch.setenv(modelstore.MODELS_ENV, str(models))
    common = ["train", "--data", data, "--validation", valid, "--arch", "unet", "--out", models / "tiny",
              "--steps-per-epoch", "2", "--batch-size", "2", "--run-dir", tmp_path / "run", *TINY_UNET]

    first = run_cli(*common, "--steps", "4")
    assert first.returncode == 0, first.stderr
    card = modelstore.resolve("tiny")
    modelstore.verify_weights(card)  # the card's checksum is the file's
    assert card.arch == "unet" and card.parameters > 0
    assert modelstore.read_index(models)["default"] == "tiny"
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert [r["epoch"] for r in state["history"]] == [1, 2]
    # the card counts the steps of the weights it ships (the epoch kept), and all run when more did
    assert card.training["steps"] == state["best_step"] in (2, 4)
    assert card.training.get("steps_run", 4) == 4 and ("steps_run" in card.training) == (state["best_step"] == 2)
    assert set(state["history"][-1]["val_sdr"]) == {*STEMS, "mean"}

    refused = run_cli(*common, "--steps", "6")
    assert refused.returncode == 2 and "--force" in refused.stderr

    resumed = run_cli(*common, "--steps", "6", "--force")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert [r["epoch"] for r in state["history"]] == [1, 2, 3]

    report = tmp_path / "scores.json"
    evaluated = run_cli("eval", valid, "--json", report, "--record", "tiny tones")
    assert evaluated.returncode == 0, evaluated.stderr
    scores = json.loads(report.read_text())
    assert set(scores) == {"tiny", "oracle", "mix4"}
    assert set(scores["oracle"]) == {"track 0", "track 1"}
    for track in scores["oracle"]:
        oracle = np.mean(list(scores["oracle"][track].values()))
        assert oracle > np.mean(list(scores["tiny"][track].values()))
        assert oracle > np.mean(list(scores["mix4"][track].values())) + 5
    recorded = modelstore.resolve("tiny").metrics["sdr"]["tiny tones"]
    assert recorded["tracks"] == 2 and set(recorded["oracle"]) == {*STEMS, "mean"}
    modelstore.verify_weights(modelstore.resolve("tiny"))  # the card still matches the weights

    more = run_cli("train", "--data", data, "--validation", valid, "--arch", "unet", "--out", models / "tiny2",
                   "--init", "tiny", "--steps", "2", "--steps-per-epoch", "2", "--batch-size", "2",
                   "--run-dir", tmp_path / "run2", "--stem-weights", "0.5,1,2,2", "--select", "weakest")
    assert more.returncode == 0, more.stderr
    continued = modelstore.resolve("tiny2")
    kept = modelstore.resolve("tiny").training["steps"]
    assert continued.training["steps"] == kept + 2 and continued.training["continued_from"]["model"] == "tiny"
    assert continued.training["stem_weights"] == {"vocals": 0.5, "drums": 1.0, "bass": 2.0, "other": 2.0}
    assert continued.training["selection"] == "weakest"
    history = json.loads((tmp_path / "run2" / "state.json").read_text())["history"]
    weakest = min(history[0]["val_sdr"][stem] - mix4 for stem, mix4 in _mix4(valid).items())
    assert continued.training["best_validation_sdr"] == pytest.approx(weakest, abs=1e-6)
    assert modelstore.read_index(models) == {"default": "tiny", "ab": "tiny2"}

    speed = run_cli("bench", "--seconds", "2", "--model", "tiny", "--json", tmp_path / "bench.json", "--record",
                    "--engine-seconds", "300")
    assert speed.returncode == 0, speed.stderr
    figures = json.loads((tmp_path / "bench.json").read_text())["models"]["tiny"]
    assert figures["block_s"] > 0 and abs(figures["rtf"] - figures["block_s"] / 4.458) < 1e-3
    assert next(iter(modelstore.resolve("tiny").metrics["speed"].values()))["rtf"] == figures["rtf"]
    engine = json.loads((tmp_path / "bench.json").read_text())["engine"]
    assert engine["song_s"] == 300 and engine["peak_rss_mb"] > 0 and engine["seek_s"] > 0


def _mix4(dataset: Path) -> dict[str, float]:
    """The mixture/4 row's median SDR per stem on the songs training validates with."""
    from tuiplayer import evaluation
    from tuiplayer.nn.train import TrainConfig, _validation_songs

    config = TrainConfig(data=(), arch="unet", out="", run_dir="", validation=str(dataset))
    row = evaluation.summary(evaluation.evaluate(_validation_songs(config), {}, oracle=False))[evaluation.MIX4_ROW]
    return {stem: row[stem] for stem in STEMS}


def test_selection_scores_the_mean_or_the_weakest_stem_over_the_floor() -> None:
    from tuiplayer.nn.train import selection_score

    model = {"vocals": 9.0, "drums": 5.0, "bass": 4.0, "other": 4.5, "mean": 5.625}
    mix4 = {"vocals": 1.5, "drums": 1.0, "bass": 1.5, "other": 1.0, "mean": 1.25}
    assert selection_score(model, mix4, "mean") == 5.625
    assert selection_score(model, mix4, "weakest") == pytest.approx(2.5)  # bass: 4.0 − 1.5


@pytest.mark.parametrize("bad", [{"select": "best"}, {"stem_weights": (1.0, 1.0)}, {"stem_weights": (0.0,) * 4},
                                 {"stem_weights": (1.0, -1.0, 1.0, 1.0)}])
def test_train_config_refuses_bad_selection_and_weights(bad: dict) -> None:
    from tuiplayer.errors import BadInput
    from tuiplayer.nn.train import TrainConfig

    with pytest.raises(BadInput):
        TrainConfig(data=("d",), arch="unet", out="o", run_dir="r", **bad)


def test_a_tiny_model_learns(tmp_path: Path) -> None:
    """A few optimizer steps on one batch of real examples make the loss fall."""
    import keras

    from tuiplayer.data.augment import AugmentConfig
    from tuiplayer.data.examples import ExampleConfig, iterate_batches
    from tuiplayer.data.tracks import find_tracks
    from tuiplayer.nn.models import TINY_OPTIONS, build_model
    from tuiplayer.nn.models.losses import TrainerLoss, with_group_loss

    tracks = find_tracks(write_dataset(tmp_path / "data", 2))
    batch = next(iterate_batches(tracks, 2, seed=0, augment=AugmentConfig.off(), n_batches=1,
                                 config=ExampleConfig(planner_effort="FFTW_ESTIMATE")))
    keras.utils.set_random_seed(0)
    trainer = with_group_loss(build_model("unet", **TINY_OPTIONS["unet"]))
    trainer.compile(optimizer=keras.optimizers.Adam(0.01), loss=TrainerLoss())
    zeros = np.zeros(2, np.float32)
    before = float(trainer.evaluate(batch, zeros, verbose=0))
    trainer.fit(batch, zeros, epochs=12, batch_size=2, verbose=0)
    assert float(trainer.evaluate(batch, zeros, verbose=0)) < 0.8 * before


def test_broken_model_files_give_one_clear_error(tmp_path: Path) -> None:
    from tuiplayer.nn import runtime

    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "model.keras").write_bytes(b"PK\x03\x04 this is not a keras archive")
    card = {"name": "broken", "version": "0", "arch": "unet", "stems": list(STEMS),
            "signal": __import__("tuiplayer.config", fromlist=["SIGNAL"]).SIGNAL.as_dict(), "parameters": 1,
            "sha256": modelstore.file_sha256(folder / "model.keras")}
    (folder / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="cannot load the model"):
        runtime.load(modelstore.read_card(folder))
    result = run_cli("eval", tmp_path, "--model", folder)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("tuiplayer: ")
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_eval_bsseval_scores_the_oracle_above_the_floor(tmp_path: Path) -> None:
    """--bsseval: museval's BSSEval v4 SDR, the oracle row above mixture/4 on every track."""
    pytest.importorskip("museval")
    valid = write_dataset(tmp_path / "valid", 2, seed=1)
    report = tmp_path / "scores.json"
    result = run_cli("eval", valid, "--oracle", "--bsseval", "--json", report)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("BSSEval v4 SDR (dB)")
    scores = json.loads(report.read_text())
    assert set(scores) == {"oracle", "mix4"}
    for track in scores["oracle"]:
        assert np.mean(list(scores["oracle"][track].values())) > np.mean(list(scores["mix4"][track].values())) + 5
    plain = run_cli("eval", valid, "--oracle", "--json", tmp_path / "plain.json")
    assert plain.returncode == 0 and plain.stdout.startswith("SDR (dB)")
    plain_scores = json.loads((tmp_path / "plain.json").read_text())
    assert plain_scores["oracle"]["track 0"]["bass"] != pytest.approx(scores["oracle"]["track 0"]["bass"], abs=0.1)


@pytest.mark.slow
def test_train_with_real_recordings_names_them_on_the_card(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`train --real DIR`: examples with partial labels go through the same trainer, and the
    card says which packages (with their licences) and how much of them."""
    from tests.test_real import fake_packages
    from tuiplayer.data.real import prepare

    prepare(tmp_path / "real", fake_packages(tmp_path / "usr"), log=lambda _: None)
    models = tmp_path / "models"
    monkeypatch.setenv(modelstore.MODELS_ENV, str(models))
    result = run_cli("train", "--data", write_dataset(tmp_path / "train", 2), "--arch", "unet", "--out",
                     models / "real", "--steps", "2", "--steps-per-epoch", "2", "--batch-size", "2",
                     "--run-dir", tmp_path / "run", "--real", tmp_path / "real", "--real-share", "1", *TINY_UNET)
    assert result.returncode == 0, result.stderr
    real = modelstore.resolve("real").training["real"]
    assert real["share"] == 1.0 and real["packages"]["sonic-pi"] == "CC0-1.0"
    assert set(real["hours"]) == {"instrumental", "guitar", "drums", "band"}
    assert np.isfinite(json.loads((tmp_path / "run" / "state.json").read_text())["history"][-1]["loss"])
    refused = run_cli("train", "--data", tmp_path / "train", "--arch", "unet", "--out", models / "x",
                      "--real", tmp_path / "nothing", *TINY_UNET)
    assert refused.returncode == 2 and "tuiplayer sources" in refused.stderr


def test_training_says_how_far_an_epoch_has_got(monkeypatch: pytest.MonkeyPatch) -> None:
    """An epoch is many minutes on a CPU: training logs the step, the loss so far, the time a
    step takes and when the epoch ends (not at its last step: the epoch's own line follows)."""
    from tuiplayer.nn import train

    lines: list[str] = []
    progress = train._progress_callback(lines.append, steps_per_epoch=10)
    progress.epoch_label = "epoch 2/7"
    monkeypatch.setattr(train, "PROGRESS_EVERY_S", 0.0)
    progress.on_epoch_begin(1)
    progress.on_train_batch_end(4, {"loss": 0.5})
    progress.on_train_batch_end(9, {"loss": 0.4})
    assert len(lines) == 1
    assert lines[0].startswith("  epoch 2/7: step 5/10, loss 0.5000, ") and "s a step" in lines[0]
    monkeypatch.setattr(train, "PROGRESS_EVERY_S", 60.0)
    progress.on_train_batch_end(5, {"loss": 0.45})  # too soon after the last line
    assert len(lines) == 1
