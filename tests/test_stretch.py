"""Tempo and pitch after the mixer (playback.stretch): what comes out, buffer by buffer, as the
sound process's callback makes it — with the real Rubber Band."""

from __future__ import annotations

import numpy as np
import pytest

from tuiplayer.config import SIGNAL
from tuiplayer.playback import stretch
from tuiplayer.playback.control import POSITION, ControlledMixer, SilentClock, new_control, write_snapshot
from tuiplayer.playback.mixer import Mixer, MixSnapshot

pytest.importorskip("pylibrb", reason="tempo and pitch need pylibrb (pip install -e '.[test]')")

SR = SIGNAL.sample_rate
BUFFER = 512


def tone(hz: float, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    x = (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    return np.stack([x, x], axis=1)


class Callback:
    """The sound process's source over `audio`, called as PortAudio would: (what came out of
    each buffer, the playhead after it)."""

    def __init__(self, audio: np.ndarray) -> None:
        self.control = new_control()
        self.source = stretch.Stretched(ControlledMixer(self.control, Mixer(audio, []), song=0))
        self.out: list[np.ndarray] = []
        self.positions: list[int] = []

    def set(self, **fields: object) -> None:
        write_snapshot(self.control, MixSnapshot(**fields), 0)  # type: ignore[arg-type]

    def seek(self, sample: int) -> None:
        from tuiplayer.playback.control import SEEK_COUNT, SEEK_SONG, SEEK_TARGET

        self.control[SEEK_TARGET], self.control[SEEK_SONG] = sample, 0
        self.control[SEEK_COUNT] += 1

    def run(self, buffers: int) -> np.ndarray:
        first = len(self.out)
        buffer = np.zeros((BUFFER, 2), dtype=np.float32)
        for _ in range(buffers):
            self.source.fill(buffer)
            self.out.append(buffer.copy())
            self.positions.append(int(self.control[POSITION]))
        return np.concatenate(self.out[first:])


def frequency(sound: np.ndarray) -> float:
    """The dominant frequency of sound's left channel (Hz)."""
    x = sound[:, 0] * np.hanning(len(sound))
    spectrum = np.abs(np.fft.rfft(x, 8 * len(x)))
    return float(np.argmax(spectrum) * SR / (8 * len(x)))


def largest_step(sound: np.ndarray) -> float:
    return float(np.abs(np.diff(sound[:, 0])).max())


def test_the_songs_own_tempo_passes_the_mix_through_untouched() -> None:
    song = tone(440, 3)
    player = Callback(song)
    heard = player.run(100)
    np.testing.assert_array_equal(heard, song[: len(heard)])


def test_slower_keeps_the_pitch_and_plays_song_time_at_the_tempo() -> None:
    player = Callback(tone(440, 20))
    player.run(50)
    player.set(tempo=0.8)
    heard = player.run(400)
    steady = heard[100 * BUFFER :]
    assert frequency(steady) == pytest.approx(440, rel=0.005)  # pitch kept
    # the playhead (song time) moves 0.8 of a buffer per buffer heard
    moved = player.positions[-1] - player.positions[-301]
    assert moved / (300 * BUFFER) == pytest.approx(0.8, abs=0.005)


@pytest.mark.parametrize(("tempo", "semitones"), [(1.0, 2), (0.8, 2), (1.5, -6), (0.5, 6)])
def test_a_transposition_moves_every_frequency_by_its_semitones(tempo: float, semitones: int) -> None:
    player = Callback(tone(440, 30))
    player.set(tempo=tempo, semitones=semitones)
    heard = player.run(300)[100 * BUFFER :]
    assert frequency(heard) == pytest.approx(440 * 2 ** (semitones / 12), rel=0.01)
    moved = player.positions[-1] - player.positions[-101]
    assert moved / (100 * BUFFER) == pytest.approx(tempo, abs=0.01)


def test_changes_while_playing_never_click() -> None:
    """A 440 Hz tone through every kind of change: engaging mid-song, tempo, pitch, back to 100 %.
    The largest step between two samples stays that of a clean tone (a click is a jump)."""
    player = Callback(tone(440, 30))
    player.run(40)
    for tempo, semitones in [(0.95, 0), (0.8, 2), (1.2, -3), (1.0, 0)]:
        player.set(tempo=tempo, semitones=semitones)
        player.run(60)
    heard = np.concatenate(player.out)
    clean = 2 * np.pi * 440 * 2 ** (2 / 12) / SR * 0.5  # a 0.5 tone's steepest step at the highest pitch
    assert largest_step(heard) < 1.25 * clean


def test_a_change_is_heard_within_a_few_buffers() -> None:
    """From the buffer where +2 semitones is first asked for to the first buffer at the new
    pitch: the stretcher's part of "heard within 100 ms" (the output's latency comes on top)."""
    player = Callback(tone(440, 10))
    player.set(tempo=0.9)
    player.run(100)
    player.set(tempo=0.9, semitones=2)
    heard = player.run(40)
    target = 440 * 2 ** (2 / 12)
    window = 1024
    at = next(i for i in range(0, len(heard) - window, 128)
              if abs(frequency(heard[i : i + window]) - target) < abs(frequency(heard[i : i + window]) - 440))
    assert at / SR < 0.040


def test_a_seek_at_a_tempo_plays_from_the_target_at_once() -> None:
    """After a seek the first sound out is the target's (the stretcher's start-up delay dropped)."""
    rng = np.random.default_rng(0)
    song = (0.2 * rng.standard_normal((10 * SR, 2))).astype(np.float32)
    song[5 * SR : 6 * SR] = tone(300, 1.0)  # the target: a tone where the rest is noise
    player = Callback(song)
    player.set(tempo=0.8)
    player.run(50)
    player.seek(5 * SR)
    heard = player.run(20)
    assert frequency(heard[: 4 * BUFFER]) == pytest.approx(300, rel=0.02)
    # the playhead: from the target on, ahead of what is heard by no more than the stretcher holds
    assert 5 * SR <= player.positions[-20] < 5.1 * SR


def test_pause_at_a_tempo_holds_the_playhead_and_resumes_where_it_was() -> None:
    player = Callback(tone(440, 10))
    player.set(tempo=0.8)
    player.run(40)
    player.set(tempo=0.8, playing=False)
    paused = player.run(20)
    assert not paused[BUFFER:].any()
    assert player.positions[-1] == player.positions[-20]
    player.set(tempo=0.8)
    resumed = player.run(40)
    assert frequency(resumed[10 * BUFFER :]) == pytest.approx(440, rel=0.005)
    assert player.positions[-1] > player.positions[-41]


def test_back_at_the_songs_own_speed_a_seek_takes_the_stretcher_out() -> None:
    song = tone(440, 10)
    player = Callback(song)
    player.set(tempo=0.8, semitones=1)
    player.run(40)
    player.set()
    player.seek(SR)
    heard = player.run(20)
    np.testing.assert_array_equal(heard, song[SR : SR + len(heard)])


def test_the_silent_clock_keeps_song_time_at_the_tempo() -> None:
    """Without sound, the playhead still moves at the tempo (half as fast at 50 %)."""
    import time

    control = new_control()
    write_snapshot(control, MixSnapshot(tempo=0.5), 0)
    clock = SilentClock(ControlledMixer(control, Mixer(tone(440, 30), []), song=0))
    try:
        time.sleep(0.2)
        start, began = control[POSITION], time.perf_counter()
        time.sleep(1.0)
        moved, took = control[POSITION] - start, time.perf_counter() - began
    finally:
        clock.close()
    assert moved / (took * SR) == pytest.approx(0.5, abs=0.06)
