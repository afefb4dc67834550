"""`tuiplayer bench --player`: the real player, timed from launch by what a listener hears.

The real `tuiplayer` runs in tmux (a 120×40 terminal), its sound through PortAudio into a
private PulseAudio server's null sink, whose monitor is recorded in real time (DESIGN.md §8;
the end-to-end test uses the same `PrivatePulse` and `TmuxPlayer`). The song is the demo,
looped to the length asked, started with the vocals muted: wherever the player plays stems
the recording is the song without its vocals, wherever it plays the original mix it is the
song. Afterwards the stems the player cached tell which is which, window by window:

- launch → first stems heard (Python's start, the runtime import, the model load, the first
  block, the screen and the sound path all included);
- the share of the first pass heard unseparated after that;
- an A/B switch (`a`) 10 s after launch: how long until the partner's stems are heard;
- the CPU share of the screen's thread, the sound process and the separation process
  (from /proc), and the sound's underflows (the sound process's line in player.log).

The soak plays a 10-minute song with a seek, a mute or an A/B switch every 2-4 s and samples
every process's memory (PSS: shared memory counted once) as it goes.
Each runs quiet and beside one busy process (`python3 -c "while True: pass"`).
"""

from __future__ import annotations

import contextlib
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tuiplayer.config import SIGNAL, STEMS
from tuiplayer.errors import BadInput

SR = SIGNAL.sample_rate
TOOLS = ("pulseaudio", "pactl", "parec", "tmux")
WINDOW_S = 0.1
"""The recording is judged in windows of this length."""
SWITCH_AT_S = 10.0
"""When (after launch) the player bench presses `a`."""


class PrivatePulse:
    """A private PulseAudio server with a null sink `out` in `home`, and a recorder of its monitor."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {**os.environ, "HOME": str(home), "XDG_RUNTIME_DIR": str(home / "run"),
                    "PULSE_RUNTIME_PATH": str(home / "run" / "pulse")}
        (home / "run").mkdir(mode=0o700, exist_ok=True)
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

    def listen_tcp(self) -> int:
        """Also take clients over TCP on 127.0.0.1 (as a sound server forwarded over SSH does):
        the port."""
        from tuiplayer.relay import free_port

        port = free_port()
        subprocess.run(["pactl", "load-module", "module-native-protocol-tcp", "auth-anonymous=1",
                        "listen=127.0.0.1", f"port={port}"], env=self.env, check=True, capture_output=True)
        return port

    def record(self) -> None:
        """Start recording; a thread timestamps each piece of sound as it arrives. The recorder
        runs at real-time priority where it may (as the sound server's threads do): at normal
        priority it lost 20 ms pieces now and then on this machine, heard as gaps the player
        never played."""
        command = ["parec", "-d", "out.monitor", "--format=float32le", "--rate=44100", "--channels=2",
                   "--latency-msec=20"]
        if shutil.which("chrt") and os.geteuid() == 0:
            command = ["chrt", "--rr", "5", *command]
        self.recorder = subprocess.Popen(command, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._reader = threading.Thread(target=self._read, args=(self.recorder.stdout,), daemon=True)
        self._reader.start()

    def _read(self, pipe: Any) -> None:
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
        first_heard = min(at - frames / SR for at, frames in self._arrivals)
        return heard, first_heard

    def close(self) -> None:
        for process in (self.recorder, self.server):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(5)


PASSED_ENV = ("HOME", "XDG_RUNTIME_DIR", "PULSE_RUNTIME_PATH", "TUIPLAYER_CACHE_DIR", "TUIPLAYER_MODELS", "PATH",
              "LANG", "TF_CPP_MIN_LOG_LEVEL", "PULSE_SERVER")


class TmuxPlayer:
    """The real tuiplayer (`python -m tuiplayer ARGS`) in a private tmux server."""

    def __init__(self, home: Path, env: dict[str, str], args: list[str], size: tuple[int, int] = (100, 30)) -> None:
        self.socket = str(home / "tmux.sock")
        variables = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items() if k in PASSED_ENV)
        command = f"env {variables} TERM=xterm-256color {shlex.quote(sys.executable)} -m tuiplayer " \
                  f"{' '.join(map(shlex.quote, args))}; sleep 5"
        self.launched = time.monotonic()
        subprocess.run(["tmux", "-S", self.socket, "new-session", "-d", "-x", str(size[0]), "-y", str(size[1]),
                        command], check=True, env={**os.environ, "TMUX": ""})

    def keys(self, *keys: str, literal: bool = False) -> None:
        """Press keys by tmux's names ("left", "1"); literal: type the characters as they are
        (for "[", "{", "\\", which tmux would read otherwise)."""
        subprocess.run(["tmux", "-S", self.socket, "send-keys", *(["-l"] if literal else []), *keys], check=True)

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

    def pids(self) -> dict[str, int]:
        """The player's processes: screen, sound, separation (those that run)."""
        shell = int(subprocess.run(["tmux", "-S", self.socket, "display", "-p", "#{pane_pid}"],
                                   capture_output=True, text=True, check=True).stdout)
        found: dict[str, int] = {}
        for pid in _descendants(shell):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"tuiplayer" not in cmdline:
                continue
            parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            if "screen" not in found and parent == shell:
                found["screen"] = pid
        screen = found.get("screen")
        if screen is not None:
            for pid in _descendants(screen, depth=1):
                name = _thread_name(pid)
                role = {"tuiplayer-sound": "sound", "tuiplayer-sep": "separation"}.get(name)
                if role:
                    found[role] = pid
        return found

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], check=False, capture_output=True)


def _descendants(pid: int, depth: int = 3) -> list[int]:
    children: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                children += [int(c) for c in (task / "children").read_text().split()]
    found = list(children)
    if depth > 1:
        for child in children:
            found += _descendants(child, depth - 1)
    return found


def _thread_name(pid: int) -> str:
    """A process's name (comm): the player names its children tuiplayer-sound and tuiplayer-sep."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """CPU time (user + system) of a process, or of one of its threads, so far."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu(role: str, pid: int) -> float:
    """CPU seconds so far of the screen's thread (the main thread), or of a whole process."""
    return cpu_seconds(pid, pid) if role == "screen" else cpu_seconds(pid)


def status_mb(pid: int, field: str) -> float:
    """A memory counter of /proc/PID/status (MB), e.g. RssAnon: read without walking the
    process's memory map, so without taking its memory-map lock."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def private_pss_mb(pid: int) -> float:
    """Proportional set size (MB) without shared memory: the process's own pages, and its share
    of the libraries' (songs_mb counts the songs, which live in shared memory, once). The kernel
    walks the process's memory map for it, holding its memory-map lock: never do it to the
    sound process while it plays (in the soak, 10-s samples of it came with 1-4 underflow
    moments per 10 minutes; without them, none)."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("Pss", "Pss_Shmem"):
            fields[name] = int(value.split()[0]) / 1024
    return fields.get("Pss", float("nan")) - fields.get("Pss_Shmem", 0.0)


def songs_mb(screen: int) -> float:
    """The memory of the songs open in the player (MB): their shared-memory files, which the
    screen's process holds open, as far as they are written (tuiplayer.stems.SharedSong)."""
    sizes: dict[int, int] = {}  # by inode: each song's file is open more than once (mmap keeps its own)
    for fd in Path(f"/proc/{screen}/fd").iterdir():
        with contextlib.suppress(OSError):
            if os.readlink(fd).startswith("/memfd:tuiplayer-song"):
                status = os.stat(fd)
                sizes[status.st_ino] = status.st_blocks * 512
    return sum(sizes.values()) / 2**20


@contextlib.contextmanager
def player_session(seconds: int, busy: bool) -> Iterator[tuple[Path, np.ndarray, PrivatePulse, list]]:
    """A folder with the demo looped to `seconds` (a WAV), a private PulseAudio server, and a
    list to put the TmuxPlayer in: (folder, song samples, server, [player]); all ended after,
    with one busy process beside them when `busy`."""
    with tempfile.TemporaryDirectory(prefix="tuiplayer-bench-") as folder, busy_process(busy):
        home = Path(folder)
        _, song = _song(home, seconds)
        pulse = PrivatePulse(home)
        started: list[TmuxPlayer] = []
        try:
            yield home, song, pulse, started
        finally:
            for player in started:
                player.close()
            pulse.close()


def start_player(home: Path, pulse: PrivatePulse, song_s: int, args: list[str], server: str | None = None
                 ) -> TmuxPlayer:
    """The real player on the session's song, 120×40, its sound into the private server; or,
    with `server`, into the one PULSE_SERVER=server names, with no sound server of its own
    (a machine reached over SSH)."""
    env = {**pulse.env, "TUIPLAYER_CACHE_DIR": str(home / "cache"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    if server is not None:
        env = remote_env(home, env, server)
    return TmuxPlayer(home, env, [str(home / f"bench-{song_s}s.wav"), *args], size=(120, 40))


def remote_env(home: Path, env: dict[str, str], server: str) -> dict[str, str]:
    """env for a player on "another machine": no sound server of its own (a home and runtime
    folder of its own under `home`), only PULSE_SERVER=server."""
    remote = home / "remote"
    (remote / "run").mkdir(parents=True, exist_ok=True, mode=0o700)
    return {**env, "PULSE_SERVER": server, "HOME": str(remote), "XDG_RUNTIME_DIR": str(remote / "run"),
            "PULSE_RUNTIME_PATH": str(remote / "run" / "pulse")}


@contextlib.contextmanager
def busy_process(on: bool) -> Iterator[None]:
    """One process burning a core meanwhile (when `on`)."""
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if on else None
    try:
        yield
    finally:
        if burner is not None:
            burner.kill()
            burner.wait()


def _song(folder: Path, seconds: int) -> tuple[Path, np.ndarray]:
    """The demo song looped to `seconds`, written as a WAV: (path, samples)."""
    import soundfile as sf

    from tuiplayer.assets import DEMO_SONG
    from tuiplayer.audio.io import load

    samples = np.resize(load(DEMO_SONG).samples, (seconds * SR, 2))
    path = folder / f"bench-{seconds}s.wav"
    sf.write(path, samples, SR, subtype="FLOAT")
    return path, samples


def _vocals(cache: Path, samples: np.ndarray, model: str) -> np.ndarray | None:
    """The vocals the player cached for this song and model (float32), or None."""
    from tuiplayer import modelstore
    from tuiplayer.separation.cache import StemCache, content_hash

    stored = StemCache(cache).load(samples, content_hash(samples), modelstore.resolve(model).sha256)
    return None if stored is None else stored[..., 0].astype(np.float32)


GAP_SAMPLES = 32
"""A run of at least this many exactly-zero frames in the recording is a dropout (music never
has one while it plays): the sound server played silence there because the player's stream
ran dry, and the song goes on after it from where it was."""


def close_gaps(heard: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """heard (n, 2) without its dropouts: (the sound, each kept frame's index in heard, the
    dropouts as (start, length) in heard). After the first sound only; silence before it is cut."""
    silent = np.all(heard == 0, axis=1)
    edges = np.diff(np.concatenate([[0], silent.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    keep = ~silent
    gaps = []
    for start, stop in zip(starts, stops, strict=True):
        if stop - start < GAP_SAMPLES:
            keep[start:stop] = True  # (a short run of zeros is music)
        elif start > 0 and stop < len(heard):
            gaps.append((int(start), int(stop - start)))
    index = np.flatnonzero(keep)
    return heard[index], index, gaps


SEARCH_S = (-0.05, 0.5)
"""How far from where it was the song is looked for after a dropout: the stream loses at most
what it held (the output latency), so the song goes on a little later than the recording."""


def track(sound: np.ndarray, index: np.ndarray, song: np.ndarray) -> np.ndarray:
    """For each WINDOW_S window of `sound` (the recording with its dropouts closed, `close_gaps`:
    index says where each frame was heard), the sample of `song` it starts at (-1: unknown).

    The sound goes on where it was. Where it fits there poorly (a dropout lost what the stream
    held, a seek, or the very start), the place is looked for again, up to SEARCH_S from the
    expected one, then anywhere in the song: a remix (a stem muted, one soloed) fits its song
    less than the mix does, so a new place is taken only where it fits clearly better."""
    window = int(WINDOW_S * SR)
    places = np.full(len(sound) // window, -1, dtype=np.int64)
    mono = song.mean(axis=1)
    expected: int | None = None
    for w in range(len(places)):
        part = sound[w * window : (w + 1) * window].mean(axis=1)
        if not np.any(part):
            expected = None if expected is None else expected + window
            continue
        place, fit = -1, -1.0
        if expected is not None and expected + window <= len(song):
            place, fit = expected, _fit(part, mono[expected : expected + window])
        if fit < 0.9 and expected is not None:
            first = max(0, expected + int(SEARCH_S[0] * SR))
            found, found_fit = _best_place(part, mono[first : expected + int(SEARCH_S[1] * SR) + window])
            if found_fit > fit + 0.05:
                place, fit = first + found, found_fit
        if fit < 0.5:
            found, found_fit = _best_place(part, mono)
            if found_fit > max(0.9, fit + 0.2):
                place, fit = found, found_fit
        places[w] = place
        expected = None if place < 0 else place + window
    return places


def _fit(part: np.ndarray, piece: np.ndarray) -> float:
    """The correlation coefficient of two pieces of sound (0 where either is silent)."""
    norm = float(np.linalg.norm(part) * np.linalg.norm(piece))
    return float(np.dot(part, piece) / norm) if norm > 0 else 0.0


def _best_place(part: np.ndarray, region: np.ndarray) -> tuple[int, float]:
    """Where in `region` the piece `part` fits best, and how well (correlation coefficient)."""
    window = len(part)
    count = len(region) - window + 1
    if count < 1:
        return -1, -1.0
    size = 1 << (len(region) + window).bit_length()
    correlation = np.fft.irfft(np.fft.rfft(region, size) * np.conj(np.fft.rfft(part, size)), size)[:count]
    energy = np.concatenate([[0.0], np.cumsum(region.astype(np.float64) ** 2)])
    norms = np.sqrt(np.maximum(energy[window:] - energy[:-window], 1e-12)) * max(float(np.linalg.norm(part)), 1e-12)
    similarity = correlation / norms
    best = int(np.argmax(similarity))
    return best, float(similarity[best])


def classify(sound: np.ndarray, places: np.ndarray, song: np.ndarray, without: np.ndarray) -> np.ndarray:
    """Per WINDOW_S window of `sound` at its place in the song (`track`): 1 where it sounds like
    `without` (stems, vocals muted), 0 like `song` (the original mix), -1 like neither."""
    window = int(WINDOW_S * SR)
    labels = np.full(len(places), -1, dtype=np.int8)
    for w, at in enumerate(places):
        if at < 0 or at + window > len(song):
            continue
        part = sound[w * window : (w + 1) * window]
        e_song = float(np.sum((part - song[at : at + window]) ** 2))
        e_without = float(np.sum((part - without[at : at + window]) ** 2))
        # the vocals' share decides (they are there in one reading and gone in the other)
        labels[w] = 1 if e_without < 0.25 * e_song else 0 if e_song < 0.25 * e_without else -1
    return labels


def _sound_line(log: Path) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if log.exists():
            for line in log.read_text(errors="replace").splitlines():
                if line.startswith("tuiplayer sound:"):
                    return line
        time.sleep(0.2)
    return ""


def _underflows(line: str) -> int | None:
    try:
        return int(line.split(" buffers played, ")[1].split(" underflows")[0])
    except (IndexError, ValueError):
        return None


def underflow_times(line: str) -> list[float]:
    """When (time.monotonic()) the first underflows of the sound process's log line came."""
    try:
        started = float(line.rsplit("started at monotonic ", 1)[1])
        listed = line.split(" underflows (at ", 1)[1].split(" s", 1)[0]
    except (IndexError, ValueError):
        return []
    return [started + float(t) for t in listed.split(", ")]


def check_tools() -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        raise BadInput(f"bench --player needs {', '.join(missing)} (Debian: pulseaudio pulseaudio-utils tmux; "
                       "scripts/setup.sh --test installs them)")


def _launch_recorded(home: Path, pulse: PrivatePulse, song_s: int, args: list[str],
                     started: list) -> tuple[TmuxPlayer, dict[str, int], tuple[float, dict[str, float]]]:
    """Start recording, then the player with args: (the player, its processes' ids by role,
    (when, their CPU seconds then))."""
    pulse.record()
    time.sleep(0.5)
    player = start_player(home, pulse, song_s, args)
    started.append(player)
    pids: dict[str, int] = {}
    while time.monotonic() < player.launched + 3 and len(pids) < 3:
        pids = player.pids()
        time.sleep(0.1)
    return player, pids, (time.monotonic(), {role: _cpu(role, pid) for role, pid in pids.items()})


def run_player(song_s: int = 60, busy: bool = False, size: tuple[int, int] = (120, 40)) -> dict[str, Any]:
    """Launch the real player on a song_s-second song, vocals muted, press `a` at SWITCH_AT_S,
    play to the end; what was heard and what the processes used (see the module docstring)."""
    from tuiplayer import modelstore

    check_tools()
    index = modelstore.read_index()
    models = [index["default"], index["ab"]]
    with player_session(song_s, busy) as (home, song, pulse, started):
        player, pids, cpu_from = _launch_recorded(home, pulse, song_s, ["--mute", STEMS[0]], started)
        launched = player.launched
        time.sleep(max(0.0, launched + SWITCH_AT_S - time.monotonic()))
        player.keys("a")
        switched = time.monotonic()
        partner_screen = None
        while time.monotonic() < launched + song_s + 2:
            screen = player.screen()
            if partner_screen is None and "B:" in screen and "(separating" in screen.split("B:")[1][:60]:
                partner_screen = time.monotonic() - launched
            if "■" in screen:  # the song has ended
                break
            time.sleep(0.25)
        ended = time.monotonic()
        cpu = {role: (_cpu(role, pid) - cpu_from[1][role]) / (ended - cpu_from[0])
               for role, pid in pids.items() if _alive(pid)}
        heard, first_heard = pulse.recording()
        for _ in range(600):  # both models' stems in the cache (they say what was heard)
            if all(_vocals(home / "cache", song, m) is not None for m in models):
                break
            time.sleep(0.2)
        player.keys("q")
        sound_line = _sound_line(home / "cache" / "player.log")
        vocals = {m: _vocals(home / "cache", song, m) for m in models}
    if any(v is None for v in vocals.values()):
        raise RuntimeError("the player did not cache both models' stems")
    sound, index, gaps = close_gaps(heard)
    places = track(sound, index, song)
    labels_a = classify(sound, places, song, song - vocals[models[0]])  # type: ignore[operator]
    labels_b = classify(sound, places, song, song - vocals[models[1]])  # type: ignore[operator]
    window = int(WINDOW_S * SR)
    times = first_heard + index[np.arange(len(labels_a)) * window] / SR  # when each window was heard
    before = times < switched
    labels = np.where(before, labels_a, labels_b)
    separated = np.flatnonzero((labels == 1) & before)
    first_stems = float(times[separated[0]] - launched) if len(separated) else float("nan")
    after_switch = np.flatnonzero((labels == 1) & ~before)
    partner_s = float(times[after_switch[0]] - switched) if len(after_switch) else float("nan")
    judged = labels[times >= times[separated[0]]] if len(separated) else labels
    return {
        "song_s": song_s, "busy": busy, "models": models, "terminal": f"{size[0]}x{size[1]}",
        "first_stems_s": first_stems,
        "unseparated_share": float(np.mean(judged[judged >= 0] == 0)) if np.any(judged >= 0) else float("nan"),
        "unseparated_s": float(np.sum(judged == 0) * WINDOW_S),
        "windows_judged": int(np.sum(labels >= 0)), "windows": len(labels),
        "dropouts": len(gaps), "dropouts_ms": 1000 * sum(length for _, length in gaps) / SR,
        "switch_at_s": switched - launched,
        "partner_stems_after_switch_s": partner_s,
        "partner_separating_on_screen_s": partner_screen,
        "cpu_share": cpu,
        "underflows": _underflows(sound_line),
        "sound_line": sound_line,
    }


def _alive(pid: int) -> bool:
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


SOAK_KEYS = ("left", "right", ",", ".", "1", "2", "3", "4", "a")
"""What the soak presses: seeks (5 s, 60 s), mutes, A/B."""


def run_soak(song_s: int = 600, busy: bool = False, seed: int = 0) -> dict[str, Any]:
    """A song_s song played through with a key every 2-4 s; memory every 10 s, underflows at the end."""
    check_tools()
    rng = random.Random(seed)
    with player_session(song_s, busy) as (home, _, pulse, started):
        player = start_player(home, pulse, song_s, [])
        started.append(player)
        memory: list[dict[str, float]] = []
        pressed: list[tuple[float, str]] = []  # (s after launch, key)
        launched = player.launched
        pids: dict[str, int] = {}
        while time.monotonic() < launched + 5 and len(pids) < 3:  # (found once: reading a process's
            pids = player.pids()  # command line also takes its memory-map lock)
            time.sleep(0.1)
        next_key, next_sample = launched + 2.0, launched + 1.0
        while time.monotonic() < launched + song_s:
            now = time.monotonic()
            if now >= next_sample:
                # the songs once; each process's own memory: PSS without the songs for the screen
                # and the separation, RssAnon for the sound (never its PSS: see private_pss_mb)
                sample = {role: status_mb(pid, "RssAnon") if role == "sound" else private_pss_mb(pid)
                          for role, pid in pids.items() if _alive(pid)}
                if "screen" in pids and _alive(pids["screen"]):
                    sample["songs"] = songs_mb(pids["screen"])
                memory.append({"t_s": round(now - launched, 1), **sample, "total": sum(sample.values())})
                next_sample += 10.0
            if now >= next_key:
                key = rng.choice(SOAK_KEYS)
                player.keys(key)
                pressed.append((round(now - launched, 2), key))
                next_key = now + rng.uniform(2.0, 4.0)
            if "■" in player.screen():
                break
            time.sleep(0.2)
        player.keys("q")
        sound_line = _sound_line(home / "cache" / "player.log")
        log = (home / "cache" / "player.log").read_text(errors="replace").splitlines()
    return {"song_s": song_s, "busy": busy, "presses": len(pressed), "keys": pressed, "memory": memory,
            "separation_log": [line for line in log if line.startswith("tuiplayer separation:")],
            "peak_pss_mb": max((m["total"] for m in memory), default=float("nan")),
            "underflows": _underflows(sound_line), "sound_line": sound_line,
            "underflows_at_s": [round(t - launched, 2) for t in underflow_times(sound_line)]}


LINK = (0.030, 0.010)
"""The link `bench --link` plays over: round trip and jitter (s): a 30 ms round trip, each piece
up to 10 ms later still, in order (Relay)."""
LINK_LATENCIES_MS = (50, 75, 100, 150, 200)
"""The output latencies it tries."""


def run_link(latency_ms: int, song_s: int = 60, busy: bool = False,
             link: tuple[float, float] = LINK) -> dict[str, Any]:
    """The real player with PULSE_SERVER only, through a delaying relay to the private server
    (`tuiplayer.relay`), at `--latency latency_ms`, the song played through: its underflows
    and the gaps heard."""
    from tuiplayer.relay import Relay

    check_tools()
    with player_session(song_s, busy) as (home, _, pulse, started):
        relay = Relay(pulse.listen_tcp(), *link)
        try:
            pulse.record()
            player = start_player(home, pulse, song_s, ["--latency", str(latency_ms)], server=relay.address)
            started.append(player)
            while time.monotonic() < player.launched + song_s + 15 and "■" not in player.screen():
                time.sleep(0.25)
            heard, _ = pulse.recording()
            player.keys("q")
            sound_line = _sound_line(home / "cache" / "player.log")
        finally:
            relay.close()
    _, _, gaps = close_gaps(heard)
    return {"song_s": song_s, "busy": busy, "latency_ms": latency_ms, "round_trip_ms": 1000 * link[0],
            "jitter_ms": 1000 * link[1], "heard_s": len(heard) / SR,
            "dropouts": len(gaps), "dropouts_ms": 1000 * sum(length for _, length in gaps) / SR,
            "underflows": _underflows(sound_line), "sound_line": sound_line}


def format_link(result: dict[str, Any]) -> str:
    return (f"  --latency {result['latency_ms']}: {result['underflows']} underflows, {result['dropouts']} dropouts "
            f"heard ({result['dropouts_ms']:.0f} ms in all)")


STRETCH = (0.8, 2)
"""The tempo and pitch the stretched run plays at (issue 15's practice case: 80 %, +2 semitones)."""


def run_stretched(song_s: int = 60, busy: bool = True) -> dict[str, Any]:
    """The real player started at STRETCH's tempo and pitch, separating as it plays, to the song's
    end: the sound's underflows and gaps, and each process's CPU share."""
    check_tools()
    tempo, semitones = STRETCH
    with player_session(song_s, busy) as (home, _, pulse, started):
        player, pids, cpu_from = _launch_recorded(
            home, pulse, song_s, ["--tempo", f"{100 * tempo:g}", "--pitch", str(semitones)], started)
        launched = player.launched
        while time.monotonic() < launched + song_s / tempo + 10 and "■" not in player.screen():
            time.sleep(0.25)
        ended = time.monotonic()
        cpu = {role: (_cpu(role, pid) - cpu_from[1][role]) / (ended - cpu_from[0])
               for role, pid in pids.items() if _alive(pid)}
        heard, _ = pulse.recording()
        player.keys("q")
        sound_line = _sound_line(home / "cache" / "player.log")
    _, _, gaps = close_gaps(heard)
    return {"song_s": song_s, "busy": busy, "tempo": tempo, "semitones": semitones,
            "played_s": ended - launched, "heard_s": len(heard) / SR, "cpu_share": cpu,
            "dropouts": len(gaps), "dropouts_ms": 1000 * sum(length for _, length in gaps) / SR,
            "underflows": _underflows(sound_line), "sound_line": sound_line}


def _cpu_line(result: dict[str, Any]) -> str:
    return ", ".join(f"{role} {100 * share:.0f} %" for role, share in result["cpu_share"].items())


def _where(result: dict[str, Any]) -> str:
    return "beside one busy process" if result["busy"] else "quiet"


def format_stretched(result: dict[str, Any]) -> str:
    cpu, where = _cpu_line(result), _where(result)
    return "\n".join([
        f"Player at {100 * result['tempo']:.0f} % tempo, {result['semitones']:+d} semitones, {where}, separating: "
        f"a {result['song_s']} s song, played in {result['played_s']:.0f} s",
        f"  CPU (share of one core): {cpu}",
        f"  sound: {result['underflows']} underflows (target 0); {result['dropouts']} dropouts heard "
        f"({result['dropouts_ms']:.0f} ms in all)",
    ])


def format_player(result: dict[str, Any]) -> str:
    cpu, where = _cpu_line(result), _where(result)
    return "\n".join([
        f"Player, {where}: a {result['song_s']} s song, vocals muted, {' / '.join(result['models'])}, "
        f"{result['terminal']} terminal",
        f"  first stems heard {result['first_stems_s']:.2f} s after launch (target ≤ 3 s)",
        f"  first pass heard unseparated after that: {100 * result['unseparated_share']:.1f} % "
        f"({result['unseparated_s']:.1f} s; target 0)",
        f"  A/B switch at {result['switch_at_s']:.1f} s: the partner's stems heard "
        f"{1000 * result['partner_stems_after_switch_s']:.0f} ms after the key",
        f"  CPU (share of one core): {cpu} (screen thread target ≤ 15 %)",
        f"  sound: {result['underflows']} underflows; {result['dropouts']} dropouts heard "
        f"({result['dropouts_ms']:.0f} ms in all)",
    ])


def format_soak(result: dict[str, Any]) -> str:
    where = _where(result)
    samples = result["memory"]
    line = ", ".join(f"{m['t_s']:.0f} s {m['total']:.0f}" for m in samples[:: max(1, len(samples) // 8)])
    return "\n".join([
        f"Soak, {where}: a {result['song_s'] / 60:g}-minute song, {result['presses']} keys (seek, mute, A/B)",
        f"  memory (MB; the songs' shared memory, PSS of the screen and the separation without it, RssAnon "
        f"of the sound): peak "
        f"{result['peak_pss_mb']:.0f}; {line}",
        f"  sound: {result['underflows']} underflows (target 0)",
    ])
