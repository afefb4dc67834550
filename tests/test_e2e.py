"""End to end: the real `tuiplayer` in tmux, its sound through PortAudio into a private
PulseAudio null sink whose monitor is recorded in real time (DESIGN.md §8). Keys are pressed
as a person would; the test checks what was actually heard."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tuiplayer import modelstore
from tuiplayer.assets import DEMO_DIR
from tuiplayer.audio.io import load
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


class Pulse:
    """A private PulseAudio server with a null sink `out`, and a recorder of its monitor."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {**os.environ, "HOME": str(home), "XDG_RUNTIME_DIR": str(home / "run"),
                    "PULSE_RUNTIME_PATH": str(home / "run" / "pulse")}
        (home / "run").mkdir(mode=0o700)
        self.server = subprocess.Popen(
            ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no",
             "-L", "module-native-protocol-unix", "-L", "module-null-sink sink_name=out rate=44100",
             "-L", "module-always-sink"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if subprocess.run(["pactl", "info"], env=self.env, capture_output=True, check=False).returncode == 0:
                break
            time.sleep(0.1)
        subprocess.run(["pactl", "set-default-sink", "out"], env=self.env, check=True, capture_output=True)
        self.recorder: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None
        self._bytes = bytearray()
        self._arrivals: list[tuple[float, int]] = []  # (time.monotonic(), frames received by then)

    def record(self) -> None:
        """Start recording; a thread timestamps each piece of sound as it arrives."""
        self.recorder = subprocess.Popen(
            ["parec", "-d", "out.monitor", "--format=float32le", "--rate=44100", "--channels=2",
             "--latency-msec=20"], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._reader = threading.Thread(target=self._read, args=(self.recorder.stdout,), daemon=True)
        self._reader.start()

    def _read(self, pipe) -> None:
        while piece := os.read(pipe.fileno(), 1 << 16):
            self._bytes += piece
            self._arrivals.append((time.monotonic(), len(self._bytes) // 8))

    def recording(self) -> tuple[np.ndarray, float]:
        """Stop recording: what was heard (n, 2) float32, and the time.monotonic() at which its
        first frame was heard. A frame arrives after it is heard, never before, so the earliest
        of (arrival − frames before it) over all pieces is that time, late by at most the
        quickest delivery; the delay of the pieces still in flight at the stop does not count."""
        assert self.recorder is not None and self._reader is not None
        self.recorder.send_signal(signal.SIGINT)
        self.recorder.wait(5)
        self._reader.join(5)
        heard = np.frombuffer(bytes(self._bytes[: len(self._bytes) // 8 * 8]), dtype="<f4").reshape(-1, 2)
        first_heard = min(at - frames / SIGNAL.sample_rate for at, frames in self._arrivals)
        return heard, first_heard

    def close(self) -> None:
        for process in (self.recorder, self.server):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(5)


class Terminal:
    """The real tuiplayer in a private tmux server, 100×30."""

    def __init__(self, home: Path, env: dict[str, str], args: list[str]) -> None:
        self.socket = str(home / "tmux.sock")
        variables = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()
                             if k in ("HOME", "XDG_RUNTIME_DIR", "PULSE_RUNTIME_PATH", "TUIPLAYER_CACHE_DIR",
                                      "PATH", "LANG", "TF_CPP_MIN_LOG_LEVEL", "TUIPLAYER_LATENCY_S"))
        command = f"env {variables} TERM=xterm-256color {shlex.quote(sys.executable)} -m tuiplayer " \
                  f"{' '.join(map(shlex.quote, args))}; sleep 5"
        subprocess.run(["tmux", "-S", self.socket, "new-session", "-d", "-x", "100", "-y", "30", command],
                       check=True, env={**os.environ, "TMUX": ""})

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "-S", self.socket, "send-keys", *keys], check=True)

    def screen(self) -> str:
        return subprocess.run(["tmux", "-S", self.socket, "capture-pane", "-p"], capture_output=True, text=True,
                              check=False).stdout

    def wait_for(self, text: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared on the screen:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], check=False, capture_output=True)


@pytest.fixture
def pulse(tmp_path: Path) -> Iterator[Pulse]:
    server = Pulse(tmp_path)
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


def test_what_is_heard_follows_the_keys(pulse: Pulse, tmp_path: Path) -> None:
    env = {**pulse.env, "TUIPLAYER_CACHE_DIR": str(tmp_path / "cache"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    terminal = Terminal(tmp_path, env, ["demo", "--model", "unet", "--ab", "unet"])
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
