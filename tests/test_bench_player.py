"""`bench --player`'s reading of a recording: where each piece is in the song, stems or mix,
through dropouts. (The bench itself runs the real player; CI runs it by hand, not as a test.)"""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from tuiplayer.assets import DEMO_DIR
from tuiplayer.audio.io import load
from tuiplayer.bench_player import WINDOW_S, classify, close_gaps, track, underflow_times

SR = 44100


def test_a_recording_with_dropouts_is_placed_in_the_song_and_read_as_mix_then_stems() -> None:
    song = load(DEMO_DIR / "mixture.flac").samples[: 12 * SR]
    vocals = load(DEMO_DIR / "vocals.flac").samples[: 12 * SR]
    without = song - vocals
    # heard: 0.3 s of silence; the mix from 0 to 3 s; then stems (vocals muted) to 6 s; a
    # dropout of 0.1 s that also lost 0.05 s of the song; stems on from 6.05 s to 10 s
    heard = np.concatenate([np.zeros((int(0.3 * SR), 2), np.float32), song[: 3 * SR], without[3 * SR : 6 * SR],
                            np.zeros((int(0.1 * SR), 2), np.float32), without[int(6.05 * SR) : 10 * SR]])
    sound, index, gaps = close_gaps(heard)
    assert gaps == [(int(6.3 * SR), int(0.1 * SR))]  # the silence before the sound is not a dropout
    places = track(sound, index, song)
    window = int(WINDOW_S * SR)
    assert places[0] == 0 and places[29] == 29 * window  # the mix, from the start
    after = int(np.searchsorted(index, int(6.4 * SR))) // window + 1  # the first whole window after the dropout
    assert abs(places[after] - (int(6.05 * SR) + (after * window - (6 * SR)))) < 64  # the lost 0.05 s skipped
    labels = classify(sound, places, song, without)
    # the original mix, then stems with the vocals muted (-1: no vocals there to tell them apart)
    assert not (labels[:29] == 1).any() and (labels[:29] == 0).sum() >= 10
    stems = np.concatenate([labels[31:59], labels[after:]])
    assert not (stems == 0).any() and (stems == 1).sum() >= 40


def test_the_sound_process_line_gives_its_underflows_on_the_monotonic_clock() -> None:
    line = ("tuiplayer sound: 900 buffers played, 2 underflows (at 1.50, 2.25 s; after waits of 80, 12 ms); "
            "slowest callback 1.2 ms (at 3.00 s), longest wait between callbacks 80.0 ms (at 1.50 s); "
            "started at monotonic 100.000")
    assert underflow_times(line) == [101.5, 102.25]
    assert underflow_times("tuiplayer sound: 9 buffers played, 0 underflows; started at monotonic 5.000") == []


def test_the_screen_s_process_imports_no_inference_runtime() -> None:
    """The player's screen, its core and the command line import neither TensorFlow nor LiteRT
    (only the separation process does, DESIGN.md §1)."""
    code = ("import sys; import tuiplayer.cli, tuiplayer.player.app, tuiplayer.player.core, tuiplayer.bench_player; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'ai_edge_litert')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
