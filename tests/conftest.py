"""Shared test set-up: the --run-slow switch and small audio fixtures."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


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
        sf.write(path, samples.astype(np.float32), sample_rate, subtype=subtype)
        return path

    return write


def run_cli(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real command line (`python -m tuiplayer ARGS`) and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "tuiplayer", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, check=False, timeout=300,
    )
