"""Shared test set-up: the --run-slow switch and small audio fixtures."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


@pytest.fixture(autouse=True)
def private_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never read or write the user's remembered songs (XDG state): each gets its own."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def write_wav(tmp_path: Path) -> Callable[..., Path]:
    """Write a test signal: write_wav(name, seconds, sample_rate, channels, subtype) → path.

    The signal is a 440 Hz sine (different phase per channel) at half scale.
    """

    def write(
        name: str = "tone.wav",
        seconds: float = 1.0,
        sample_rate: int = 44100,
        channels: int = 2,
        subtype: str | None = None,
    ) -> Path:
        t = np.arange(int(seconds * sample_rate)) / sample_rate
        samples = np.stack([0.5 * np.sin(2 * np.pi * 440 * t + c) for c in range(channels)], axis=1)
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, samples.astype(np.float32), sample_rate, subtype=subtype)
        return path

    return write


def run_cli(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real command line (`python -m tuiplayer ARGS`) and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "tuiplayer", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, check=False, timeout=300,
    )


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder holding `tiny`, an UNTRAINED tiny unet: for testing the plumbing of
    loading and separating, never a model to ship (its masks are near-uniform)."""
    import json

    import keras

    from tuiplayer import modelstore
    from tuiplayer.config import SIGNAL, STEMS
    from tuiplayer.nn.models import TINY_OPTIONS, build_model

    root = tmp_path_factory.mktemp("models")
    folder = root / "tiny"
    folder.mkdir()
    keras.utils.set_random_seed(0)
    model = build_model("unet", **TINY_OPTIONS["unet"])
    model.save(folder / "model.keras")
    card = {"name": "tiny", "version": "test", "arch": "unet", "stems": list(STEMS), "signal": SIGNAL.as_dict(),
            "parameters": model.count_params(), "sha256": modelstore.file_sha256(folder / "model.keras"),
            "training": {"note": "untrained test fixture"}, "metrics": {}}
    (folder / "card.json").write_text(json.dumps(card))
    (root / "index.json").write_text(json.dumps({"default": "tiny", "ab": None}))
    return root
