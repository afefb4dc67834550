"""Real sound output: PortAudio's ALSA `default` device written to a file (DESIGN.md §8)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tuiplayer.assets import DEMO_DIR
from tuiplayer.audio.io import load
from tuiplayer.config import SIGNAL
from tuiplayer.playback.output import LATENCY_S


def alsa_file_home(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An environment whose PortAudio `default` output writes raw float32 frames to a file."""
    heard = tmp_path / "heard.raw"
    (tmp_path / ".asoundrc").write_text(
        f'pcm.!default {{ type file slave.pcm "null" file "{heard}" format "raw" }}\n'
    )
    return {**os.environ, "HOME": str(tmp_path)}, heard


def played_through_portaudio(tmp_path: Path, code: str) -> tuple[np.ndarray, str]:
    """Run python code whose PortAudio `default` output is a file: what it played (n, 2), and
    its stderr."""
    env, heard = alsa_file_home(tmp_path)
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    return np.fromfile(heard, dtype="<f4").reshape(-1, 2), result.stderr


def test_the_player_mix_plays_the_song_bit_for_bit_through_portaudio(tmp_path: Path) -> None:
    """The player's mixer as the source of a real PortAudio stream: before any stems exist
    (and at unity gains) the original song comes out exactly."""
    played, _ = played_through_portaudio(tmp_path, (
        "import time; from tuiplayer.audio.io import load; from tuiplayer.assets import DEMO_DIR\n"
        "from tuiplayer.playback.mixer import Mixer; from tuiplayer.playback.output import AudioOutput\n"
        "mixer = Mixer(load(DEMO_DIR / 'mixture.flac').samples, [None])\n"
        "output = AudioOutput(mixer)\n"
        "while not mixer.ended: time.sleep(0.05)\n"
        "time.sleep(0.2); output.close()\n"
    ))
    song = load(DEMO_DIR / "mixture.flac").samples
    assert np.any(song[0] != 0)
    # PortAudio primes ALSA with its buffer's worth of silence, then the song plays bit for bit
    lead = int(np.argmax(np.any(played != 0, axis=1)))
    assert lead <= LATENCY_S * SIGNAL.sample_rate + 4 * 1024 and not played[:lead].any()
    np.testing.assert_array_equal(played[lead : lead + len(song)], song)
    assert not played[lead + len(song) :].any()


def test_a_missing_output_device_is_one_clear_line(tmp_path: Path) -> None:
    env, _ = alsa_file_home(tmp_path)
    result = subprocess.run([sys.executable, "-m", "tuiplayer", "demo", "--device", "no such card"],
                            env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "no sound output device 'no such card'" in result.stderr and "--no-audio" in result.stderr


def test_the_output_reports_when_it_ran_dry() -> None:
    """The log line names each of the first underflows' time (seconds of playing) and the wait
    before it, the slowest callback and the longest wait between two, not only a count."""
    from tuiplayer.playback.output import OutputStats

    now = [1000.0]
    stats = OutputStats(clock=lambda: now[0])
    assert stats.report() == "0 buffers played, 0 underflows; started at monotonic 1000.000"
    for n in range(1, 400):
        called = 1000.0 + n / 100 + (0.07 if n >= 350 else 0)  # 10 ms buffers; one came 80 ms late
        now[0] = called + (0.004 if n == 120 else 0.001)  # each took 1 ms, one 4 ms
        stats.record(called, n in (50, 250) or n >= 300)
    # (the first 8 of them)
    assert stats.report() == (
        "399 buffers played, 102 underflows (at 0.50, 2.50, 3.00, 3.01, 3.02, 3.03, 3.04, 3.05 s; after waits "
        "of 10, 10, 10, 10, 10, 10, 10, 10 ms); slowest callback 4.0 ms (at 1.20 s), longest wait between "
        "callbacks 80.0 ms (at 3.57 s); started at monotonic 1000.000")


@pytest.mark.skipif(shutil.which("pulseaudio") is None, reason="needs pulseaudio (scripts/setup.sh --test)")
def test_the_audio_command_says_what_the_player_would_use(tmp_path: Path) -> None:
    from tuiplayer.bench_player import PrivatePulse

    pulse = PrivatePulse(tmp_path)
    try:
        env = pulse.env
        local = subprocess.run([sys.executable, "-m", "tuiplayer", "audio"], env=env, capture_output=True,
                               text=True, timeout=60, check=False)
        assert local.returncode == 0, local.stderr
        assert "the system's default output" in local.stdout and "PULSE_SERVER is not set" in local.stdout
        socket_path = Path(env["PULSE_RUNTIME_PATH"]) / "native"
        forwarded = subprocess.run([sys.executable, "-m", "tuiplayer", "audio"], capture_output=True, text=True,
                                   env={**env, "PULSE_SERVER": f"unix:{socket_path}"}, timeout=60, check=False)
        assert "▶" in forwarded.stdout and "pulse" in forwarded.stdout
        assert f"PULSE_SERVER=unix:{socket_path}: ALSA's pulse plugin plays there" in forwarded.stdout
        assert "answers" in forwarded.stdout
        gone = subprocess.run([sys.executable, "-m", "tuiplayer", "audio"], capture_output=True, text=True,
                              env={**env, "PULSE_SERVER": "tcp:127.0.0.1:9"}, timeout=60, check=False)
        assert "not reachable" in gone.stdout and "is the SSH tunnel up?" in gone.stdout
        assert "connects when the server answers" in gone.stdout  # (the player waits for it)
    finally:
        pulse.close()
