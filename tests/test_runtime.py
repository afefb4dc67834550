"""Running the shipped models as the player does: through LiteRT, the same masks as Keras."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tuiplayer import modelstore
from tuiplayer.errors import ModelError
from tuiplayer.nn import lite, runtime


@pytest.mark.slow
@pytest.mark.parametrize("name", ["unet", "hybrid", "d3net", "spleeter-2stems"])
def test_the_shipped_litert_file_gives_the_keras_model_s_masks(name: str) -> None:
    card = modelstore.resolve(name)
    player = runtime.load_for_player(card)
    assert isinstance(player, lite.LiteRunner)  # the player never needs TensorFlow for it
    blocks = lite.test_blocks()
    np.testing.assert_allclose(player(blocks), runtime.load(card)(blocks), atol=1e-4, rtol=0)
    assert card.runtimes["tflite"]["max_abs_difference"] <= lite.MAX_DIFFERENCE


@pytest.mark.slow
def test_the_shipped_ensemble_runs_in_the_player_as_under_tensorflow() -> None:
    card = modelstore.resolve("spleeter-hybrid")
    assert card.is_ensemble and [m["model"] for m in card.members] == ["spleeter-2stems", "hybrid"]
    blocks = lite.test_blocks()[:1]
    masks = runtime.load_for_player(card)(blocks)
    np.testing.assert_allclose(masks, runtime.load(card)(blocks), atol=1e-4, rtol=0)
    np.testing.assert_allclose(masks.sum(axis=-1), 1, atol=1e-5)


def _copy(name: str, tmp_path: Path) -> Path:
    folder = tmp_path / name
    shutil.copytree(modelstore.resolve(name).folder, folder)
    return folder


def test_a_litert_file_that_does_not_match_its_card_is_refused(tmp_path: Path) -> None:
    folder = _copy("unet", tmp_path)
    data = bytearray((folder / lite.LITE_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / lite.LITE_FILE).write_bytes(bytes(data))
    with pytest.raises(ModelError, match="checksum does not match"):
        runtime.load_for_player(modelstore.read_card(folder))


def test_weights_trained_again_without_a_new_litert_file_run_through_keras(tmp_path: Path) -> None:
    """A model.tflite made from other weights is not used (the card says what it was made from)."""
    folder = _copy("unet", tmp_path)
    card = json.loads((folder / "card.json").read_text())
    card["runtimes"]["tflite"]["from_sha256"] = "0" * 64
    (folder / "card.json").write_text(json.dumps(card))
    assert not lite.available(modelstore.read_card(folder))
    with pytest.raises(ModelError, match=r"no model\.tflite"):
        lite.load(modelstore.read_card(folder))
