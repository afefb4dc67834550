"""`tuiplayer bench`: the STFT table and its JSON, on a short track."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli


@pytest.mark.slow
def test_bench_writes_the_documented_json_and_refuses_to_overwrite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUIPLAYER_MODELS", str(tmp_path / "no models"))  # the STFT table only
    report = tmp_path / "bench.json"
    result = run_cli("bench", "--seconds", "3", "--json", report)
    assert result.returncode == 0, result.stderr
    assert "pyfftw (ours)" in result.stdout and "numpy.fft" in result.stdout
    figures = json.loads(report.read_text())
    stft = figures["stft"]
    assert stft["audio_s"] == 3
    for key in ("pyfftw_s", "numpy_s", "scipy_s", "fftw_raw_s"):
        assert stft[key] > 0
    assert stft["roundtrip_rel_error"] < 1e-5
    assert figures["models"] == {}
    assert figures["tf_import_s"] > 0
    again = run_cli("bench", "--seconds", "3", "--json", report)
    assert again.returncode == 2 and "--force" in again.stderr
    assert run_cli("bench", "--seconds", "3", "--json", report, "--force").returncode == 0
