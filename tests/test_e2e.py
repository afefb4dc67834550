"""End to end: the real `tuiplayer` in tmux, its sound through PortAudio into a private
PulseAudio null sink whose monitor is recorded in real time (DESIGN.md §8). Keys are pressed
as a person would; the test checks what was actually heard."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tuiplayer import modelstore
from tuiplayer.assets import DEMO_DIR
from tuiplayer.audio.io import load
from tuiplayer.bench_player import PrivatePulse, TmuxPlayer
from tuiplayer.config import SIGNAL
from tuiplayer.separation.cache import StemCache, content_hash

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not all(shutil.which(tool) for tool in ("pulseaudio", "pactl", "parec", "tmux")),
                       reason="needs pulseaudio, pulseaudio-utils and tmux (scripts/setup.sh --test)"),
]


SETTLE_S = 0.6
"""A phase is judged from this long after its keys were pressed."""


def error_db(heard: np.ndarray, expected: np.ndarray, reference: np.ndarray) -> float:
    """Energy of heard − expected relative to reference's, in dB."""
    return float(10 * np.log10(np.sum((heard - expected) ** 2) / np.sum(reference**2) + 1e-12))


@pytest.fixture
def pulse(tmp_path: Path) -> Iterator[PrivatePulse]:
    server = PrivatePulse(tmp_path)
    yield server
    server.close()


def lag_of(heard: np.ndarray, song: np.ndarray, near: int) -> int:
    """The sample of `song` that heard[0] is, searched around `near` (cross-correlation)."""
    probe = heard[SIGNAL.sample_rate : SIGNAL.sample_rate * 2, 0]
    lo = max(0, near - 2 * SIGNAL.sample_rate)
    region = song[lo : near + 3 * SIGNAL.sample_rate + len(probe), 0]
    n = len(region) + len(probe)
    size = 1 << (n - 1).bit_length()
    correlation = np.fft.irfft(np.fft.rfft(region, size) * np.conj(np.fft.rfft(probe, size)), size)
    best = int(np.argmax(correlation[: len(region) - len(probe)]))
    return lo + best - SIGNAL.sample_rate


def test_what_is_heard_follows_the_keys(pulse: PrivatePulse, tmp_path: Path) -> None:
    env = {**pulse.env, "TUIPLAYER_CACHE_DIR": str(tmp_path / "cache"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    terminal = TmuxPlayer(tmp_path, env, ["demo", "--model", "unet", "--ab", "unet"])
    try:
        terminal.wait_for("B: unet v0.1 (separated)")
        terminal.wait_for("A: unet v0.1 (separated)")
        assert "no sound output" not in terminal.screen()
        terminal.keys(",")  # back to the start
        pulse.record()
        time.sleep(1.0)  # parec is up
        start = time.monotonic()
        phases = {}  # phase → (from, to) seconds after the recording started
        for phase, keys in [("all", ()), ("no vocals", ("1",)), ("drums solo", ("1", "@")),
                            ("switched", ("@", "a"))]:
            if keys:
                terminal.keys(*keys)
            began = time.monotonic() - start
            time.sleep(3.0)
            phases[phase] = (began + SETTLE_S, time.monotonic() - start - 0.2)
        heard, first_heard = pulse.recording()
        # into recording time: the recording's first frame was heard this long before `start`
        lead = start - first_heard
        phases = {phase: (first + lead, last + lead) for phase, (first, last) in phases.items()}
        screen = terminal.screen()
        terminal.keys("q")
        sound_line = wait_for_line(tmp_path / "cache" / "player.log", "tuiplayer sound:")
    finally:
        terminal.close()
    assert "▶ [reverse" not in screen  # (markup never leaks)
    song = load(DEMO_DIR / "mixture.flac").samples
    card = modelstore.resolve("unet")
    stored = StemCache(tmp_path / "cache").load(song, content_hash(song), card.sha256)
    assert stored is not None, "the player cached its stems"
    vocals, drums = stored[..., 0].astype(np.float32), stored[..., 1].astype(np.float32)

    lag = lag_of(heard, song, near=0)
    # it plays from the start, as asked (the seek is heard a little after recording began)
    assert -SIGNAL.sample_rate // 2 < lag < SIGNAL.sample_rate

    silent = np.all(heard[: int(phases["switched"][1] * SIGNAL.sample_rate)] == 0, axis=1)
    gap, at = _longest_run(silent[SIGNAL.sample_rate :])
    # no dropouts while playing (the message says where, against the phases, and what the sound process saw)
    assert gap < 256, f"{gap} silent samples at {1 + at / SIGNAL.sample_rate:.2f} s; phases {phases}; {sound_line}"

    def window(phase: str) -> tuple[np.ndarray, slice]:
        first, last = (int(t * SIGNAL.sample_rate) for t in phases[phase])
        return heard[first:last], slice(first + lag, last + lag)

    part, at = window("all")
    assert error_db(part, song[at], song[at]) < -30  # all stems up: the song itself
    part, at = window("no vocals")
    assert error_db(part, song[at] - vocals[at], vocals[at]) < -20  # the vocals' share is gone
    # how soon the mute was heard: from the key press to the change in the recording
    pressed = phases["no vocals"][0] - SETTLE_S
    changed = change_heard_at(heard, song, song - vocals, lag, pressed - 0.2, pressed + 0.5)
    print(f"vocals muted: heard {1000 * (changed - pressed):.0f} ms after the key press")
    assert changed - pressed < 0.05
    assert error_db(part, song[at], vocals[at]) > -3  # (and it really was there to remove)
    part, at = window("drums solo")
    assert error_db(part, drums[at], drums[at]) < -20  # the drums alone
    part, at = window("switched")
    assert error_db(part, song[at], song[at]) < -30  # model B, same playhead: no jump, no gap
    assert "B: unet" in screen
    print(sound_line)
    assert sound_line.endswith(" 0 underflows")  # no dropout from launch to quit, separating included


def change_heard_at(heard: np.ndarray, before: np.ndarray, after: np.ndarray, lag: int,
                    first_s: float, last_s: float) -> float:
    """When (s, recording time) `heard` stops sounding like `before` and starts sounding like
    `after` (song-time arrays, heard[i] ~ song[i + lag]): the least-squares change point
    between first_s and last_s, to 2.9 ms windows."""
    window = 128
    first, last = int(first_s * SIGNAL.sample_rate), int(last_s * SIGNAL.sample_rate)
    n = (last - first) // window
    part = heard[first : first + n * window].reshape(n, window, 2)
    song_part = slice(first + lag, first + lag + n * window)
    e_before = ((part - before[song_part].reshape(n, window, 2)) ** 2).sum(axis=(1, 2))
    e_after = ((part - after[song_part].reshape(n, window, 2)) ** 2).sum(axis=(1, 2))
    # cost of "before until window w, after from w on", for every w
    cost = np.concatenate([[0], np.cumsum(e_before)]) + np.concatenate([np.cumsum(e_after[::-1])[::-1], [0]])
    return (first + int(np.argmin(cost)) * window) / SIGNAL.sample_rate


def wait_for_line(path: Path, prefix: str, timeout: float = 10.0) -> str:
    """The first line of the file at path that starts with prefix, once it is there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace") if path.exists() else ""
        line = next((line for line in text.splitlines() if line.startswith(prefix)), None)
        if line is not None:
            return line
        time.sleep(0.1)
    raise AssertionError(f"no line {prefix!r} in {path}")


def _longest_run(flags: np.ndarray) -> tuple[int, int]:
    """Length and start of the longest run of True in flags ((0, 0) when there is none)."""
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    if not len(starts):
        return 0, 0
    longest = int(np.argmax(stops - starts))
    return int(stops[longest] - starts[longest]), int(starts[longest])
