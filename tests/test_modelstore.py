"""Model folders and cards: discovery, checks, and the `models` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli

from tuiplayer import modelstore
from tuiplayer.config import SIGNAL, STEMS
from tuiplayer.errors import ModelError


def make_model(root: Path, name: str, **changes: object) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "model.keras").write_bytes(b"weights of " + name.encode())
    card = {
        "name": name, "version": "0.1", "arch": "unet", "stems": list(STEMS),
        "signal": SIGNAL.as_dict(), "parameters": 1234,
        "sha256": modelstore.file_sha256(folder / "model.keras"),
        "training": {"steps": 10}, "metrics": {},
    }
    card.update(changes)
    (folder / "card.json").write_text(json.dumps(card))
    return folder


def test_cards_are_found_and_checked(tmp_path: Path) -> None:
    make_model(tmp_path, "alpha")
    make_model(tmp_path, "beta")
    make_model(tmp_path, "old", signal={**SIGNAL.as_dict(), "n_fft": 2048})
    (tmp_path / "index.json").write_text(json.dumps({"default": "alpha", "ab": "beta"}))
    assert [card.name for card in modelstore.installed(tmp_path)] == ["alpha", "beta"]
    assert modelstore.resolve(None, tmp_path).name == "alpha"
    assert modelstore.resolve(str(tmp_path / "beta"), tmp_path).name == "beta"
    assert modelstore.resolve(str(tmp_path / "beta" / "model.keras"), tmp_path).name == "beta"
    card = modelstore.resolve("beta", tmp_path)
    assert modelstore.verify_weights(card) == tmp_path / "beta" / "model.keras"


def test_mismatched_signal_settings_are_refused(tmp_path: Path) -> None:
    make_model(tmp_path, "old", signal={**SIGNAL.as_dict(), "n_fft": 2048})
    with pytest.raises(ModelError, match=r"other signal settings \(n_fft\)"):
        modelstore.resolve("old", tmp_path)


def test_broken_cards_and_weights_give_clear_errors(tmp_path: Path) -> None:
    folder = make_model(tmp_path, "m")
    (folder / "model.keras").write_bytes(b"something else")
    with pytest.raises(ModelError, match="checksum does not match"):
        modelstore.verify_weights(modelstore.resolve("m", tmp_path))
    (folder / "model.keras").unlink()
    with pytest.raises(ModelError, match=r"model\.keras is missing"):
        modelstore.verify_weights(modelstore.resolve("m", tmp_path))
    (folder / "card.json").write_text("{not json")
    with pytest.raises(ModelError, match="unreadable model card"):
        modelstore.resolve("m", tmp_path)
    (folder / "card.json").write_text(json.dumps({"name": "m"}))
    with pytest.raises(ModelError, match="lacks or mangles"):
        modelstore.resolve("m", tmp_path)
    with pytest.raises(ModelError, match="no model named 'zz'"):
        modelstore.resolve("zz", tmp_path)
    with pytest.raises(ModelError, match="no default model"):
        modelstore.resolve(None, tmp_path)


def test_models_command_lists_cards_as_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_model(tmp_path, "alpha")
    (tmp_path / "index.json").write_text(json.dumps({"default": "alpha", "ab": None}))
    monkeypatch.setenv(modelstore.MODELS_ENV, str(tmp_path))
    listed = json.loads(run_cli("models", "--json").stdout)
    assert [(m["name"], m["path"]) for m in listed] == [("alpha", str(tmp_path / "alpha"))]
    text = run_cli("models").stdout
    assert text.startswith("alpha 0.1 (default): unet, 1,234 parameters")


def test_the_repository_models_folder_is_consistent() -> None:
    """Every shipped card matches its weights, and the index names shipped models."""
    root = modelstore.models_root()
    index = modelstore.read_index(root)
    names = {card.name for card in modelstore.installed(root)}
    for role in ("default", "ab"):
        assert index[role] is None or index[role] in names
    for card in modelstore.installed(root):
        modelstore.verify_weights(card)
