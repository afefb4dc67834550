"""Ensembles: model versions whose stems come from other model versions (tuiplayer.nn.ensemble)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tuiplayer.config import SIGNAL, STEMS
from tuiplayer.errors import BadInput, ModelError, OutputExistsError
from tuiplayer.nn.ensemble import Ensemble, combine, parse_member


def _random_masks(seed: int, shape=(2, 3, 4, 2)) -> np.ndarray:
    raw = np.random.default_rng(seed).uniform(0, 1, (*shape, len(STEMS))).astype(np.float32)
    return raw / raw.sum(axis=-1, keepdims=True)


def test_the_first_member_keeps_its_masks_and_the_rest_share_what_is_left():
    a, b = _random_masks(0), _random_masks(1)
    masks = combine([(a, ["vocals"]), (b, ["drums", "bass", "other"])])
    np.testing.assert_allclose(masks[..., 0], a[..., 0], atol=1e-6)
    np.testing.assert_allclose(masks.sum(axis=-1), 1, atol=1e-6)
    # the others in proportion to b's own masks among them
    rest = b[..., 1:] / b[..., 1:].sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(masks[..., 1:], (1 - a[..., :1]) * rest, atol=1e-6)


def test_masks_sum_to_one_for_any_split_and_zero_masks():
    a = _random_masks(2)
    a[..., 1:3] = 0  # a 2-stem model: nothing in drums and bass
    b = _random_masks(3)
    for order in ([(a, ["vocals", "other"]), (b, ["drums", "bass"])],
                  [(b, ["bass"]), (a, ["drums"]), (b, ["vocals", "other"])]):
        masks = combine(order)
        assert masks.min() >= 0
        np.testing.assert_allclose(masks.sum(axis=-1), 1, atol=1e-5)


class Recorder:
    """A fake member: returns fixed masks and remembers what it was given."""

    def __init__(self, masks: np.ndarray) -> None:
        self.masks, self.seen = masks, []

    def __call__(self, magnitudes: np.ndarray) -> np.ndarray:
        self.seen.append(magnitudes.copy())
        return self.masks


def test_a_rest_member_separates_what_the_members_before_it_left():
    x = np.random.default_rng(4).uniform(0, 3, (2, 3, 4, 2)).astype(np.float32)
    first, second = Recorder(_random_masks(5)), Recorder(_random_masks(6))
    masks = Ensemble(None, [(first, ["vocals"], "song"), (second, ["drums", "bass", "other"], "rest")])(x)
    np.testing.assert_allclose(first.seen[0], x)
    np.testing.assert_allclose(second.seen[0], x * (1 - first.masks[..., 0]), rtol=1e-5)
    np.testing.assert_allclose(masks.sum(axis=-1), 1, atol=1e-5)


def test_member_specs_are_checked():
    assert parse_member("hybrid:drums,bass:rest") == {"model": "hybrid", "stems": ["drums", "bass"], "input": "rest"}
    for bad in ("hybrid", "hybrid:", "hybrid:guitar", "hybrid:drums:later", ":vocals"):
        with pytest.raises(BadInput):
            parse_member(bad)


@pytest.fixture
def two_members(tiny_models: Path, tmp_path: Path) -> Path:
    """A models folder with `tiny` (an untrained tiny unet) and `duo` (a synthetic 2-stem
    Spleeter checkpoint, imported): plumbing only, never models to ship."""
    pytest.importorskip("tensorflow")
    from test_spleeter import synthetic_variables, write_checkpoint

    from tuiplayer.nn import spleeter

    root = tmp_path / "models"
    shutil.copytree(tiny_models, root)
    config = {"instrument_list": ["vocals", "accompaniment"]}
    folder = write_checkpoint(tmp_path / "ckpt", synthetic_variables(2), config)
    spleeter.import_checkpoint(folder, root / "duo", tflite=False)
    return root


def test_an_ensemble_is_a_model_like_any_other(two_members: Path):
    from tuiplayer import modelstore
    from tuiplayer.nn import runtime
    from tuiplayer.nn.ensemble import write_ensemble

    card = write_ensemble(two_members / "mix", ["duo:vocals", "tiny:drums,bass,other:rest"])
    assert card.is_ensemble and card.in_other == ()
    assert card.name in [c.name for c in modelstore.installed(two_members)]
    assert card.parameters == sum(modelstore.resolve(n, two_members).parameters for n in ("duo", "tiny"))
    x = np.random.default_rng(7).uniform(0, 2, (1, SIGNAL.n_frames, SIGNAL.n_bins, SIGNAL.channels)).astype(np.float32)
    duo, tiny = (runtime.load(modelstore.resolve(n, two_members)) for n in ("duo", "tiny"))
    masks = runtime.load(card)(x)
    vocals = duo(x)
    np.testing.assert_allclose(masks[..., 0], vocals[..., 0], atol=1e-6)
    expected = combine([(vocals, ["vocals"]), (tiny(x * (1 - vocals[..., 0])), ["drums", "bass", "other"])])
    np.testing.assert_allclose(masks, expected, atol=1e-5)

    # the player's loader gives the same masks (members through LiteRT where they have it)
    np.testing.assert_allclose(runtime.load_for_player(card)(x), masks, atol=1e-4)

    with pytest.raises(OutputExistsError):
        write_ensemble(two_members / "mix", ["duo:vocals", "tiny:drums,bass,other"])


def test_an_ensemble_whose_member_changed_is_refused(two_members: Path):
    from tuiplayer import modelstore
    from tuiplayer.nn.ensemble import write_ensemble

    card = write_ensemble(two_members / "mix", ["duo:vocals,other", "tiny:drums,bass"])
    assert card.in_other == ()
    tiny_card = two_members / "tiny" / "card.json"
    raw = json.loads(tiny_card.read_text())
    raw["sha256"] = "0" * 64  # as if tiny had been retrained
    tiny_card.write_text(json.dumps(raw))
    with pytest.raises(ModelError, match="members changed"):
        modelstore.verify_weights(modelstore.resolve("mix", two_members))


def test_an_ensemble_must_produce_each_stem_once(two_members: Path):
    from tuiplayer.nn.ensemble import write_ensemble

    with pytest.raises(BadInput, match="exactly once"):
        write_ensemble(two_members / "mix", ["duo:vocals", "tiny:vocals,drums,bass,other"])
    with pytest.raises(BadInput, match="exactly once"):
        write_ensemble(two_members / "mix", ["duo:vocals", "tiny:drums"])
    with pytest.raises(ModelError, match="no model named"):
        write_ensemble(two_members / "mix", ["nope:vocals", "tiny:drums,bass,other"])
    assert not (two_members / "mix").exists()
    card = write_ensemble(two_members / "mix", ["duo:drums,vocals", "tiny:bass,other"])
    assert card.in_other == ("drums",)  # duo leaves drums in other: the ensemble says so


def test_the_command_line_makes_and_lists_ensembles(two_members: Path, monkeypatch):
    from conftest import run_cli

    monkeypatch.setenv("TUIPLAYER_MODELS", str(two_members))
    bad = run_cli("models", "ensemble", "mix", "--member", "duo:guitar")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--member 'duo:guitar'" in bad.stderr
    made = run_cli("models", "ensemble", "mix", "--member", "duo:vocals", "--member", "tiny:drums,bass,other:rest")
    assert made.returncode == 0, made.stderr
    assert "drums, bass, other from tiny on what is left" in made.stdout
    listed = run_cli("models")
    assert "mix 0.1e: ensemble of duo (vocals) + tiny (drums,bass,other on the rest)" in listed.stdout
    again = run_cli("models", "ensemble", "mix", "--member", "duo:vocals", "--member", "tiny:drums,bass,other")
    assert again.returncode == 2 and "exists already" in again.stderr
    export = run_cli("models", "tflite", "mix")
    assert export.returncode == 2 and "is an ensemble" in export.stderr and export.stderr.count("\n") == 1
