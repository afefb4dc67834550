"""The sound process: its control array, and a real PortAudio stream played from a forked child."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from tests.test_output import alsa_file_home, played_through_portaudio
from tuiplayer.assets import DEMO_DIR
from tuiplayer.audio.io import load
from tuiplayer.config import SIGNAL
from tuiplayer.playback.control import (
    ENDED,
    HEARD,
    POSITION,
    SEEK_COUNT,
    SEEK_SONG,
    SEEK_TARGET,
    SEQUENCE,
    SONG,
    ControlledMixer,
    new_control,
    write_snapshot,
)
from tuiplayer.playback.mixer import Mixer, MixSnapshot
from tuiplayer.playback.output import BLOCK_FRAMES
from tuiplayer.playback.process import SOUND_RT_PRIORITY, STALL_S
from tuiplayer.stems import StemBuffers

N = SIGNAL.sample_rate


def song_and_stems() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    stems = (0.1 * rng.standard_normal((N, 2, 4))).astype(np.float32)
    return stems.sum(axis=-1), stems


def test_the_child_takes_snapshots_and_seeks_from_the_control_array() -> None:
    audio, stems = song_and_stems()
    buffers = StemBuffers.zeros(N)
    buffers.stored[...] = stems[..., :3]
    buffers.frames_ready[...] = True
    control = new_control()
    source = ControlledMixer(control, Mixer(audio, [buffers]), song=0)
    out = np.empty((BLOCK_FRAMES, 2), dtype=np.float32)

    source.fill(out)  # the default snapshot: the song
    np.testing.assert_allclose(out, audio[:BLOCK_FRAMES], atol=1e-3)
    assert control[POSITION] == BLOCK_FRAMES

    write_snapshot(control, MixSnapshot(gains=(0.5, 0.5, 0.5, 0.5)), 7)  # for another song: not taken
    write_snapshot(control, MixSnapshot(gains=(0.0, 1.0, 1.0, 1.0)), 0)  # vocals muted
    source.fill(out)  # (the ramp)
    source.fill(out)
    expected = audio[2 * BLOCK_FRAMES : 3 * BLOCK_FRAMES] - buffers.stored[2 * BLOCK_FRAMES : 3 * BLOCK_FRAMES, :, 0]
    np.testing.assert_allclose(out, expected, atol=1e-6)

    # a snapshot being written (odd sequence) is not taken half-way: the last whole one stays
    control[SEQUENCE] += 1
    control[1:] = 0  # fields torn to zeros: not playing, every gain 0
    source.fill(out)
    assert out.any() and source.mixer.snapshot.gains == (0.0, 1.0, 1.0, 1.0)
    control[SEQUENCE] -= 1
    write_snapshot(control, MixSnapshot(gains=(0.0, 1.0, 1.0, 1.0)), 0)

    control[SEEK_TARGET], control[SEEK_SONG] = 10_000, 0
    control[SEEK_COUNT] += 1
    source.fill(out)
    assert control[POSITION] == 10_000 + BLOCK_FRAMES
    source.fill(out)  # a seek is taken once
    assert control[POSITION] == 10_000 + 2 * BLOCK_FRAMES
    control[SEEK_TARGET], control[SEEK_SONG] = 0, 7  # a seek in another song: not taken
    control[SEEK_COUNT] += 1
    source.fill(out)
    assert control[POSITION] == 10_000 + 3 * BLOCK_FRAMES and control[SONG] == 0


def test_a_queued_song_follows_the_playing_one_without_a_gap() -> None:
    """The last sample of one song is followed by the first of the next, in the same buffer,
    at the next song's own mix; asked to play another, the source jumps to it at once."""
    first, second = (np.random.default_rng(seed).uniform(-0.5, 0.5, (n, 2)).astype(np.float32)
                     for seed, n in ((1, 3000), (2, 5000)))
    control = new_control()
    source = ControlledMixer(control, Mixer(first, []), song=0)
    separated = StemBuffers.zeros(len(second))
    separated.frames_ready[...] = True  # (gains apply where there are stems)
    source.queue(1, Mixer(second, [separated]), MixSnapshot(gains=(0.5,) * 4))
    out = np.empty((1024, 2), dtype=np.float32)
    heard = []
    for _ in range(4):
        source.fill(out)
        heard.append(out.copy())
    heard = np.concatenate(heard)
    np.testing.assert_array_equal(heard[:3000], first)
    np.testing.assert_allclose(heard[3000:4096], 0.5 * second[:1096], atol=1e-6)  # at its mix from its first sample
    assert control[SONG] == 1 and control[POSITION] == 4 * 1024 - 3000 and not control[ENDED]
    assert source.held == {1}

    source.play(0, Mixer(first, []), MixSnapshot(), 1000)  # (another thread asks; taken at the next buffer)
    source.fill(out)
    np.testing.assert_array_equal(out, first[1000:2024])
    assert control[SONG] == 0 and control[POSITION] == 2024


def test_the_sound_process_plays_the_remix_through_portaudio(tmp_path: Path) -> None:
    """The player's output path for real: a forked child plays the mix from stems in shared
    memory into PortAudio's ALSA `default` device (a file). It starts paused; the stems are
    written after the fork, then it plays with the vocals muted. (The file device takes sound
    as fast as it comes, so the pause is what keeps the order.)"""
    played, stderr = played_through_portaudio(tmp_path, (
        "import time, numpy as np; from tuiplayer.audio.io import load; from tuiplayer.assets import DEMO_DIR\n"
        "from tuiplayer.playback.mixer import MixSnapshot\n"
        "from tuiplayer.playback.transport import Transport\n"
        "from tuiplayer.stems import SharedSong\n"
        "transport = Transport()\n"
        "transport.start()\n"
        "shared = SharedSong.create(0, load(DEMO_DIR / 'mixture.flac').samples, 1)\n"
        "song, buffers = shared.audio, shared.stems[0]\n"
        "transport.play(shared, MixSnapshot(playing=False))\n"
        "assert transport.pid is not None, transport.error\n"
        "assert transport.description.startswith('default, ') and transport.description.endswith(' ms')\n"

        "buffers.stored[..., 0] = load(DEMO_DIR / 'vocals.flac').samples\n"
        "buffers.frames_ready[...] = True\n"
        "transport.snapshot = MixSnapshot(gains=(0.0, 1.0, 1.0, 1.0))\n"
        "while not transport.ended: time.sleep(0.05)\n"
        "assert transport.position == len(song), transport.position\n"
        "transport.close()\n"
    ))
    assert "buffers played, 0 underflows" in stderr  # the child's line at exit
    song = load(DEMO_DIR / "mixture.flac").samples
    vocals = load(DEMO_DIR / "vocals.flac").samples.astype(np.float16).astype(np.float32)
    lead = int(np.argmax(np.any(played != 0, axis=1)))  # silence while paused
    played = played[lead : lead + len(song)]
    # the first buffer ramps the vocals out; from there on, the song minus its vocals
    np.testing.assert_array_equal(played[BLOCK_FRAMES:], (song - vocals)[BLOCK_FRAMES:])
    assert np.abs(vocals).max() > 0.05  # (there were vocals to take out)


def _player_playing(tmp_path: Path) -> tuple[subprocess.Popen, int]:
    """A process playing the demo song through an AudioProcess (into PortAudio's ALSA file
    device), and its sound process's pid."""
    env, _ = alsa_file_home(tmp_path)
    code = (
        "import time; from tuiplayer.audio.io import load; from tuiplayer.assets import DEMO_DIR\n"
        "from tuiplayer.playback.mixer import MixSnapshot\n"
        "from tuiplayer.playback.transport import Transport\n"
        "from tuiplayer.stems import SharedSong\n"
        "transport = Transport()\n"
        "transport.start()\n"
        "transport.play(SharedSong.create(0, load(DEMO_DIR / 'mixture.flac').samples, 1), MixSnapshot())\n"
        "print(transport.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    player = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
    return player, int(player.stdout.readline())  # type: ignore[union-attr]


def test_the_sound_process_runs_in_real_time_where_allowed(tmp_path: Path) -> None:
    """Where this user may (root, or RLIMIT_RTPRIO), the sound process and its threads run
    SCHED_RR; elsewhere they run as before, at the ordinary policy."""
    allowed = os.geteuid() == 0 or resource.getrlimit(resource.RLIMIT_RTPRIO)[0] >= SOUND_RT_PRIORITY
    player, child = _player_playing(tmp_path)
    try:
        threads = [int(t.name) for t in Path(f"/proc/{child}/task").iterdir()]
        assert len(threads) > 1  # PortAudio's are there too
        policies = {os.sched_getscheduler(thread) for thread in threads}
        assert policies == ({os.SCHED_RR} if allowed else {os.SCHED_OTHER})
        if allowed:
            assert os.sched_getparam(child).sched_priority == SOUND_RT_PRIORITY
    finally:
        player.kill()
        player.wait(10)


def test_the_sound_process_ends_when_the_player_is_killed(tmp_path: Path) -> None:
    """A player killed outright (SIGKILL: no clean-up runs) leaves no sound playing."""
    player, child = _player_playing(tmp_path)
    try:
        assert _alive(child)
        player.kill()
        player.wait(10)
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(child)
    finally:
        player.kill()


def _alive(pid: int) -> bool:
    """Whether process pid runs (a zombie, exited but not yet reaped, does not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def test_a_playhead_that_stands_still_while_playing_is_a_stalled_output() -> None:
    from tests.test_player import stopped_sound_process

    control = new_control()
    process = stopped_sound_process(control)

    class Alive:
        def is_alive(self) -> bool:
            return True

    process._process = Alive()  # type: ignore[assignment]
    assert not process.stalled()  # (first look)
    process._moved = (control[POSITION], time.monotonic() - STALL_S - 0.1)
    assert process.stalled()  # playing, and the playhead still for longer than STALL_S
    write_snapshot(control, MixSnapshot(playing=False), 0)
    assert not process.stalled()  # paused: standing still is right
    write_snapshot(control, MixSnapshot(), 0)
    control[POSITION] = 1000
    assert not process.stalled()  # moving


def test_the_latency_asked_for_is_the_latency_played(tmp_path: Path) -> None:
    """--latency reaches PortAudio in the sound process, and the window's description says
    what PortAudio gave (a little more than asked: whole periods)."""
    played_through_portaudio(tmp_path, (
        "import numpy as np\n"
        "from tuiplayer.playback.transport import Transport\n"
        "transport = Transport()\n"
        "transport.start(latency=0.3)\n"
        "ms = float(transport.description.split(', ')[-1].removesuffix(' ms'))\n"
        "assert 300 <= ms < 400, transport.description\n"
        "transport.close()\n"
    ))


def test_a_lost_output_plays_on_silently_and_is_opened_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sound process's Speaker: while its output is lost the silent clock moves the
    playhead on (control HEARD 0); it tries again every RECONNECT_S, and the output it opens
    then plays on from where the playhead got to (HEARD 1)."""
    from tuiplayer.playback import process
    from tuiplayer.playback.output import AudioDeviceError, OutputStats

    class Output:
        """Stands in for AudioOutput: plays its source in a thread until `lost` is set."""

        opened: ClassVar[list[Output]] = []
        refuse: ClassVar[bool] = False

        def __init__(self, source: object, device: object, latency: float, stats: OutputStats) -> None:
            if Output.refuse:
                raise AudioDeviceError("no server")
            self.source, self.stats, self.is_lost = source, stats, False
            self.buffer = np.zeros((BLOCK_FRAMES, 2), dtype=np.float32)
            Output.opened.append(self)

        def play(self, buffers: int) -> None:
            for _ in range(buffers):
                self.source.fill(self.buffer)  # type: ignore[attr-defined]

        def lost(self) -> bool:
            return self.is_lost

        def describe(self) -> str:
            return f"test output {len(Output.opened)}"

        def close(self) -> None:
            pass

    monkeypatch.setattr(process, "AudioOutput", Output)
    monkeypatch.setattr(process, "RECONNECT_S", 0.2)
    monkeypatch.setattr(process, "refresh_outputs", lambda: None)
    control = new_control()
    mixers = ControlledMixer(control)
    speaker = process.Speaker(mixers, None, 0.05)
    audio = np.ones((30 * N, 2), dtype=np.float32)
    mixers.play(0, Mixer(audio, [StemBuffers.zeros(len(audio))]), MixSnapshot())
    try:
        first = Output.opened[0]
        first.play(10)
        assert control[HEARD] == 1 and control[POSITION] == 10 * BLOCK_FRAMES
        first.is_lost, Output.refuse = True, True
        assert not speaker.check()  # lost: the silent clock takes over
        assert control[HEARD] == 0 and speaker.describe() == "lost"
        lost_at = control[POSITION]
        time.sleep(0.5)
        assert speaker.check() is False and len(Output.opened) == 1  # (tried, refused)
        moved = control[POSITION] - lost_at
        assert 0.3 * N < moved < 0.7 * N  # on in real time, silently
        Output.refuse = False
        time.sleep(0.25)
        assert speaker.check()  # opened again
        assert control[HEARD] == 1 and speaker.describe() == "test output 2"
        here = control[POSITION]
        time.sleep(0.1)
        assert control[POSITION] == here  # the silent clock has stopped
        Output.opened[1].play(2)
        assert control[POSITION] == here + 2 * BLOCK_FRAMES  # the new output goes on from there
        assert speaker.stats.losses == 1
    finally:
        speaker.close()
