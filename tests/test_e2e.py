"""End to end: the real `tuiplayer` in tmux, its sound through PortAudio into a private
PulseAudio null sink whose monitor is recorded in real time (DESIGN.md §8). Keys are pressed
as a person would; the test checks what was actually heard."""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tuiplayer import modelstore
from tuiplayer.assets import DEMO_DIR
from tuiplayer.audio.io import load
from tuiplayer.bench_player import (
    LINK,
    WINDOW_S,
    PrivatePulse,
    TmuxPlayer,
    close_gaps,
    remote_env,
    track,
    underflow_times,
)
from tuiplayer.config import SIGNAL
from tuiplayer.playback.output import BLOCK_FRAMES, LATENCY_S
from tuiplayer.relay import Relay
from tuiplayer.separation.cache import StemCache, content_hash

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not all(shutil.which(tool) for tool in ("pulseaudio", "pactl", "parec", "tmux")),
                       reason="needs pulseaudio, pulseaudio-utils and tmux (scripts/setup.sh --test)"),
]


SETTLE_S = 0.6
"""A phase is judged from this long after its keys were pressed."""

KEY_PATH_S = 0.040
"""From tmux to the mixer's control array: the key crosses the pseudo-terminal and may wait in
Textual's event loop behind one screen update; plus the error of placing the recording in time.
(15 ms was too tight: one CI run on a loaded machine heard the mute 77 ms after the key.)"""


def error_db(heard: np.ndarray, expected: np.ndarray, reference: np.ndarray) -> float:
    """Energy of heard − expected relative to reference's, in dB."""
    return float(10 * np.log10(np.sum((heard - expected) ** 2) / np.sum(reference**2) + 1e-12))


@pytest.fixture
def pulse(tmp_path: Path) -> Iterator[PrivatePulse]:
    server = PrivatePulse(tmp_path)
    yield server
    server.close()


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

    # where in the song each 0.1 s of the recording is (the recorder or the server may drop a
    # piece: each window is placed on its own, near the last one's place)
    sound, index, _ = close_gaps(heard)
    places = track(sound, index, song)
    window = int(WINDOW_S * SIGNAL.sample_rate)
    heard_at = index[np.arange(len(places)) * window] / SIGNAL.sample_rate  # recording time of each window
    # it plays from the start, as asked (the seek is heard a little after recording began)
    assert 0 <= places[np.argmax(places >= 0)] < 3 * SIGNAL.sample_rate

    def parts(phase: str) -> tuple[np.ndarray, np.ndarray]:
        """What was heard in a phase's windows (each whole, no gap inside) and where they are in the song."""
        first, last = phases[phase]
        chosen = [w for w in range(len(places)) if first <= heard_at[w] and heard_at[w] + WINDOW_S <= last
                  and places[w] >= 0 and index[(w + 1) * window - 1] - index[w * window] == window - 1]
        assert len(chosen) > 10, f"{phase}: too little of it heard whole"
        return (np.concatenate([sound[w * window : (w + 1) * window] for w in chosen]),
                np.concatenate([np.arange(places[w], places[w] + window) for w in chosen]))

    part, at = parts("all")
    assert error_db(part, song[at], song[at]) < -30  # all stems up: the song itself
    part, at = parts("no vocals")
    assert error_db(part, song[at] - vocals[at], vocals[at]) < -20  # the vocals' share is gone
    assert error_db(part, song[at], vocals[at]) > -3  # (and it really was there to remove)
    # how soon the mute was heard: from the key press to the change in the recording
    pressed = phases["no vocals"][0] - SETTLE_S
    w = int(np.searchsorted(heard_at, pressed - 0.25))
    changed = change_heard_at(sound[w * window :], song, song - vocals, places[w], 0.0, 0.75)
    changed = index[w * window + int(changed * SIGNAL.sample_rate)] / SIGNAL.sample_rate
    print(f"vocals muted: heard {1000 * (changed - pressed):.0f} ms after the key press")
    # one buffer (the mixer takes the change at the next one), the output latency, the key's path
    assert changed - pressed < BLOCK_FRAMES / SIGNAL.sample_rate + LATENCY_S + KEY_PATH_S
    part, at = parts("drums solo")
    assert error_db(part, drums[at], drums[at]) < -20  # the drums alone
    part, at = parts("switched")
    assert error_db(part, song[at], song[at]) < -30  # model B, same playhead: no jump, no gap
    assert "B: unet" in screen
    print(sound_line)
    # no dropout while the test listened, separating included: the sound process says when its
    # stream ran dry (the recorder's own losses are not the player's)
    listened = (first_heard, first_heard + phases["switched"][1])
    dry = [t - first_heard for t in underflow_times(sound_line) if listened[0] <= t <= listened[1]]
    assert not dry, f"the sound ran dry at {dry} s of the recording; phases {phases}; {sound_line}"


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




def clicked_sine(hz: float, seconds: float) -> np.ndarray:
    """A test song (n, 2) float32: a sine at `hz` with a click (a 2 ms burst) every second."""
    rate = SIGNAL.sample_rate
    t = np.arange(int(seconds * rate)) / rate
    song = 0.25 * np.sin(2 * np.pi * hz * t)
    burst = int(0.002 * rate)
    for second in range(int(seconds)):
        start = second * rate + rate // 2
        song[start : start + burst] += 0.7 * np.sign(np.sin(np.arange(burst) * 2.1))
    return np.repeat(song[:, None], 2, axis=1).astype(np.float32)


def sine_hz(piece: np.ndarray) -> float:
    """The strongest frequency of a piece (n, 2), to ~0.1 Hz (a peak of a long zero-padded FFT)."""
    mono = piece.mean(axis=1) * np.hanning(len(piece))
    spectrum = np.abs(np.fft.rfft(mono, 1 << 20))
    return float(np.argmax(spectrum) * SIGNAL.sample_rate / (1 << 20))


def click_times(piece: np.ndarray) -> np.ndarray:
    """When (s from the piece's start) the clicks are heard: bursts of the signal's steepness
    (bursts within 0.3 s of the one before belong to it)."""
    rate = SIGNAL.sample_rate
    steep = np.abs(np.diff(piece.mean(axis=1)))
    hop = int(0.005 * rate)
    envelope = steep[: len(steep) // hop * hop].reshape(-1, hop).max(axis=1)
    loud = envelope > 0.3 * envelope.max()
    starts = np.flatnonzero(loud & ~np.concatenate([[False], loud[:-1]])) * hop / rate
    # a stretched click can come out as two bursts a few ms apart: one click, heard at the first
    return np.array([t for i, t in enumerate(starts) if i == 0 or t - starts[i - 1] > 0.3])


def test_practice_tempo_pitch_and_songs_as_heard(pulse: PrivatePulse, tmp_path: Path) -> None:
    """Issue 15 as a listener hears it: at 80 % the clicks come 1.25 s apart and the sine keeps
    its frequency; at +2 semitones the sine is 2^(2/12) higher and the clicks keep their
    spacing; at the end of the first song the second follows by itself without a gap; `<`
    and `>` move between them."""
    import soundfile

    low, high = tmp_path / "1-low.wav", tmp_path / "2-high.wav"
    soundfile.write(low, clicked_sine(440.0, 20.0), SIGNAL.sample_rate, subtype="FLOAT")
    soundfile.write(high, clicked_sine(660.0, 12.0), SIGNAL.sample_rate, subtype="FLOAT")
    env = {**pulse.env, "TUIPLAYER_CACHE_DIR": str(tmp_path / "cache"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    terminal = TmuxPlayer(tmp_path, env, [str(low), str(high), "--model", "unet"], size=(120, 40))
    try:
        terminal.wait_for("(separated)")
        terminal.wait_for("(>, stems ready)")  # the next song, separated ahead
        pulse.record()
        time.sleep(1.0)  # parec is up
        start = time.monotonic()
        marks = {}  # what was pressed → seconds after `start`

        def press(name: str, *keys: str, literal: bool = True, wait: float = 0.0) -> None:
            terminal.keys(*keys, literal=literal)
            marks[name] = time.monotonic() - start
            time.sleep(wait)

        press("slow", "[[[[", wait=5.5)  # 80 %
        terminal.wait_for("[80 %, 0 st]", timeout=1)
        press("up", "\\}}", wait=5.5)  # the song's tempo, +2 semitones
        press("own", "\\")
        terminal.wait_for("2/2", timeout=20)  # the second song started by itself
        marks["second"] = time.monotonic() - start
        time.sleep(2.0)
        press("back", "<", wait=2.5)  # (under 3 s into it: the song before)
        press("forward", ">", wait=2.5)
        heard, first_heard = pulse.recording()
        screen = terminal.screen()
        terminal.keys("q")
        sound_line = wait_for_line(tmp_path / "cache" / "player.log", "tuiplayer sound:")
    finally:
        terminal.close()
    rate = SIGNAL.sample_rate
    lead = start - first_heard  # recording time = time after start + lead

    def piece(first_s: float, last_s: float) -> np.ndarray:
        return heard[int((first_s + lead) * rate) : int((last_s + lead) * rate)]

    slow = piece(marks["slow"] + 0.5, marks["up"])
    assert abs(sine_hz(slow) - 440.0) < 440.0 * 0.01  # pitch kept
    spacing = np.diff(click_times(slow))
    assert len(spacing) >= 2 and np.allclose(spacing, 1.25, atol=0.03), spacing

    up = piece(marks["up"] + 0.5, marks["own"])
    assert abs(sine_hz(up) - 440.0 * 2 ** (2 / 12)) < 440.0 * 0.01
    spacing = np.diff(click_times(up))
    assert len(spacing) >= 2 and np.allclose(spacing, 1.0, atol=0.03), spacing

    # the change from one song to the next: the last 440 Hz window, then 660 Hz, never silence
    around = piece(marks["own"] + 0.5, marks["second"] + 1.0)
    window = int(0.02 * rate)
    windows = around[: len(around) // window * window].reshape(-1, window, 2)
    tones = np.array([sine_hz(w) for w in windows])
    is_high = np.abs(tones - 660) < 30
    switch = int(np.argmax(is_high))
    assert is_high[switch:].all() and (np.abs(tones[:switch] - 440) < 30).all(), tones
    rms = np.sqrt((windows.mean(axis=2) ** 2).mean(axis=1))
    assert rms[max(0, switch - 5) : switch + 5].min() > 0.1, rms  # (the sine alone: 0.18)
    quiet = np.all(np.abs(around) < 1e-4, axis=1)  # (a sine is this near 0 for under a sample)
    runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]]))))[::2]
    assert runs.max(initial=0) < 4, runs  # not one gap, however short, between the songs

    back = piece(marks["back"] + 0.5, marks["forward"])
    assert abs(sine_hz(back) - 440.0) < 5
    forward = piece(marks["forward"] + 0.5, marks["forward"] + 2.4)
    assert abs(sine_hz(forward) - 660.0) < 5
    assert "2/2" in screen and "2-high.wav" in screen
    dry = [t - first_heard for t in underflow_times(sound_line) if first_heard <= t]
    assert not dry, f"the sound ran dry at {dry} s of the recording; {sound_line}"


def test_over_a_forwarded_sound_server_and_a_lost_link(pulse: PrivatePulse, tmp_path: Path) -> None:
    """Issue 16: the real player on a "remote" machine with no sound server of its own, only
    PULSE_SERVER pointing through a relay (the SSH tunnel: 30 ms round trip, jitter) at the
    "local" server, which takes clients over TCP. The song is heard without gaps, a mute is
    heard; when the relay is killed the window says so and the song goes on silently; when it
    is back the sound comes back by itself, further on in the song (not restarted)."""
    relay = Relay(pulse.listen_tcp(), *LINK)
    env = remote_env(tmp_path, {**pulse.env, "TUIPLAYER_CACHE_DIR": str(tmp_path / "cache"),
                                "TF_CPP_MIN_LOG_LEVEL": "3"}, relay.address)
    terminal = TmuxPlayer(tmp_path, env, ["demo", "--model", "unet", "--ab", "unet"], size=(120, 40))
    try:
        terminal.wait_for("B: unet v0.1 (separated)")
        screen = terminal.wait_for("A: unet v0.1 (separated)")
        granted = int(screen.split("sound: pulse, ", 1)[1].split(" ms", 1)[0])  # which output, and its
        assert 75 <= granted <= 110, screen  # latency: the one for a link (100 ms asked for)
        terminal.keys(",")  # back to the start
        pulse.record()
        time.sleep(1.0)  # parec is up
        start = time.monotonic()
        marks = {"all": 0.0}
        time.sleep(3.0)
        terminal.keys("1")
        marks["no vocals"] = time.monotonic() - start
        time.sleep(3.0)
        marks["cut"] = time.monotonic() - start
        relay.cut()  # (the server drops what the stream held at once)
        lost = terminal.wait_for("the sound output was lost", timeout=10)
        assert "playing silently, trying to reconnect" in lost
        time.sleep(3.0)
        relay.restore()
        marks["restored"] = time.monotonic() - start
        terminal.wait_for("the sound is back: pulse", timeout=15)
        marks["back"] = time.monotonic() - start
        time.sleep(3.0)
        marks["end"] = time.monotonic() - start
        heard, first_heard = pulse.recording()
        terminal.keys("q")
        sound_line = wait_for_line(tmp_path / "cache" / "player.log", "tuiplayer sound:")
    finally:
        terminal.close()
        relay.close()
    assert "the output was lost 1 time and opened again" in sound_line, sound_line
    song = load(DEMO_DIR / "mixture.flac").samples
    stored = StemCache(tmp_path / "cache").load(song, content_hash(song), modelstore.resolve("unet").sha256)
    assert stored is not None, "the player cached its stems"
    vocals = stored[..., 0].astype(np.float32)
    lead = start - first_heard  # recording time = time after start + lead
    rate = SIGNAL.sample_rate

    sound, index, gaps = close_gaps(heard)
    places = track(sound, index, song)
    window = int(WINDOW_S * rate)
    heard_at = index[np.arange(len(places)) * window] / rate - lead  # each window, in seconds after start

    def part(first: float, last: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The windows heard whole between first and last (s after start): the sound, where it
        is in the song, and each window's place."""
        chosen = [w for w in range(len(places)) if first <= heard_at[w] and heard_at[w] + WINDOW_S <= last
                  and places[w] >= 0 and index[(w + 1) * window - 1] - index[w * window] == window - 1]
        assert len(chosen) > 10, f"{first}-{last} s: too little of it heard whole"
        return (np.concatenate([sound[w * window : (w + 1) * window] for w in chosen]),
                np.concatenate([np.arange(places[w], places[w] + window) for w in chosen]),
                places[chosen])

    heard_part, at, _ = part(marks["all"] + SETTLE_S, marks["no vocals"])
    assert error_db(heard_part, song[at], song[at]) < -30  # the song itself
    heard_part, at, before_cut = part(marks["no vocals"] + SETTLE_S, marks["cut"])
    assert error_db(heard_part, song[at] - vocals[at], vocals[at]) < -20  # the mute is heard
    # without gaps up to the cut (after the first sound heard; `lead` is known to ~20 ms)
    assert not [g for g in gaps if g[0] / rate - lead < marks["cut"] - 0.05], gaps
    heard_part, at, after = part(marks["back"] + SETTLE_S, marks["end"])
    assert error_db(heard_part, song[at] - vocals[at], vocals[at]) < -20  # the same mix, back
    # the song went on meanwhile (the silent clock), from where it was, not from its start
    went_on = (after[0] - before_cut[-1]) / rate
    expected = marks["back"] + SETTLE_S - marks["cut"]
    assert 0.5 * expected < went_on < expected + 2.0, (went_on, expected)
    assert not [g for g in gaps if g[0] / rate - lead > marks["back"] + SETTLE_S], gaps


def test_a_player_started_before_the_tunnel_plays_once_it_is_up(pulse: PrivatePulse, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """PULSE_SERVER names a server that does not answer yet: the sound process plays silently,
    says why, and plays through the server once it answers (PortAudio, which lists its outputs
    once, is made to look again)."""
    from tuiplayer.playback.mixer import MixSnapshot
    from tuiplayer.playback.transport import Transport
    from tuiplayer.relay import free_port
    from tuiplayer.stems import SharedSong

    server_port, port = pulse.listen_tcp(), free_port()
    for name, value in remote_env(tmp_path, {}, f"tcp:127.0.0.1:{port}").items():
        monkeypatch.setenv(name, value)
    transport = Transport()
    transport.start()  # (it forks: the relay, opened after, is not inherited)
    relay = None
    try:
        assert transport.error is None and "not reachable" in transport.note
        assert "is the SSH tunnel up" in transport.note
        sine = 0.2 * np.sin(2 * np.pi * 440 * np.arange(20 * SIGNAL.sample_rate) / SIGNAL.sample_rate)
        song = SharedSong.create(0, np.repeat(sine.astype(np.float32)[:, None], 2, axis=1), 1)
        pulse.record()
        transport.play(song, MixSnapshot())
        time.sleep(1.0)
        assert transport.check() is None and transport.position > 0.8 * SIGNAL.sample_rate  # silently on
        relay = Relay(server_port, port=port)
        deadline = time.monotonic() + 10
        while (notice := transport.check()) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert notice is not None and notice.startswith("the sound is back: pulse"), notice
        time.sleep(1.5)
        heard, _ = pulse.recording()
    finally:
        transport.close()
        if relay is not None:
            relay.close()
    assert np.abs(heard[-SIGNAL.sample_rate :]).max() > 0.15  # the sine, heard


STALL_S = 0.3
"""How long the sound server is stopped in the stall test: longer than the output latency, so
that the stream runs dry."""


def test_a_stalled_sound_server_costs_the_stall_and_no_more(pulse: PrivatePulse, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 12: a moment when the sound server does not run (a virtual machine's host taking the
    CPU, as this machine's did now and then in the busy soaks) is one dropout shorter than that
    moment, and the song goes on from where it was: no restart, no long hold, no lost output."""
    from tuiplayer.playback.mixer import MixSnapshot
    from tuiplayer.playback.transport import Transport
    from tuiplayer.stems import SharedSong

    for name in ("HOME", "XDG_RUNTIME_DIR", "PULSE_RUNTIME_PATH"):
        monkeypatch.setenv(name, pulse.env[name])
    monkeypatch.delenv("PULSE_SERVER", raising=False)
    song = load(DEMO_DIR / "mixture.flac").samples
    rate = SIGNAL.sample_rate
    transport = Transport()
    transport.start()
    try:
        assert transport.error is None, transport.error
        pulse.record()
        time.sleep(1.0)  # parec is up
        transport.play(SharedSong.create(0, song, 1), MixSnapshot())
        time.sleep(2.0)
        os.kill(pulse.server.pid, signal.SIGSTOP)
        time.sleep(STALL_S)
        os.kill(pulse.server.pid, signal.SIGCONT)
        time.sleep(2.5)
        notice = transport.check()
        heard, _ = pulse.recording()
    finally:
        transport.close()
    assert notice is None, notice  # (not a lost output)
    sound, index, gaps = close_gaps(heard)
    assert len(gaps) == 1, gaps  # the stall, and nothing else
    start, length = gaps[0]
    # about the stall less what the stream held (0.25 s here), never a hold of its own (~2 s)
    assert 0 < length / rate < STALL_S + 0.1, gaps
    places = track(sound, index, song)
    window = int(WINDOW_S * rate)
    heard_at = index[np.arange(len(places)) * window]  # recording frame of each window
    before = places[(heard_at + window <= start) & (places >= 0)]
    after = places[(heard_at >= start + length) & (places >= 0)]
    assert len(before) > 10 and len(after) > 10
    # from where it was: the first window after the gap is later in the song by less than the stall
    skipped = (after[0] - before[-1] - window) / rate
    print(f"stalled {STALL_S} s: a dropout of {length / rate:.3f} s, {skipped:.3f} s of the song skipped")
    assert -0.02 < skipped < STALL_S, (skipped, gaps)
    # and on at the song's speed (the place grows by the window each time)
    assert np.all(np.abs(np.diff(after) - window) < 0.01 * rate), np.diff(after)
