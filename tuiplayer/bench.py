"""`tuiplayer bench`: speed and memory figures, printed as a table and optionally as JSON.

First table: STFT + inverse STFT of a 4-minute stereo track with our FFTW path, beside the
same framing done with numpy.fft and scipy.fft, and FFTW's raw time for the same number of
4096-point real FFTs (plans and buffers resident: the limit no STFT can beat).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from tuiplayer.config import SIGNAL
from tuiplayer.dsp import stft as stft_module
from tuiplayer.dsp.stft import Stft, n_frames_for
from tuiplayer.files import check_writable, write_text
from tuiplayer.modelstore import ModelCard
from tuiplayer.playback import stretch
from tuiplayer.separation.blocks import DEFAULT_OVERLAP, BlockGrid

BENCH_AUDIO_S = 240
"""Length of the benchmark track in seconds (a typical song)."""

REPEATS = 3
"""Each timing is the best of this many runs (first-run costs are reported apart)."""


def _best_of(run: Callable[[], object], repeats: int = REPEATS) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def reference_stft_roundtrip(
    audio: np.ndarray,
    rfft: Callable[[np.ndarray], np.ndarray],
    irfft: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """STFT + inverse the plain way, for comparison: frame, window, FFT, overlap-add.

    audio (n_samples, channels) → (n_samples, channels). rfft/irfft work along axis 1.
    """
    cfg = SIGNAL
    n_samples, channels = audio.shape
    n_frames = n_frames_for(n_samples)
    half = cfg.n_fft // 2
    window = np.hanning(cfg.n_fft + 1)[:-1].astype(np.float32)[:, None]
    padded = np.zeros(((n_frames - 1) * cfg.hop_length + cfg.n_fft, channels), dtype=np.float32)
    padded[half : half + n_samples] = audio
    # (n_frames, n_fft, channels), a view
    frames = np.lib.stride_tricks.sliding_window_view(padded, cfg.n_fft, axis=0)[:: cfg.hop_length]
    frames = frames.transpose(0, 2, 1)
    spec = rfft(frames * window)
    back = irfft(spec) * window
    signal = np.zeros_like(padded)
    weight = np.zeros(len(padded), dtype=np.float32)
    for t in range(n_frames):
        signal[t * cfg.hop_length : t * cfg.hop_length + cfg.n_fft] += back[t]
        weight[t * cfg.hop_length : t * cfg.hop_length + cfg.n_fft] += window[:, 0] ** 2
    return signal[half : half + n_samples] / weight[half : half + n_samples, None]


def _fftw_raw_s(n_frames: int, channels: int, threads: int, effort: str) -> float:
    """FFTW alone: n_frames·channels forward and as many inverse 4096-point real FFTs."""
    ranges = stft_module.split_frames(n_frames, threads)

    def job(first: int, stop: int) -> None:
        plans = stft_module.thread_plans(SIGNAL.n_fft, channels, effort)
        for _ in range(first, stop, stft_module.CHUNK_FRAMES):
            plans.forward(plans.real, plans.spec)
            plans.inverse(plans.spec, plans.real)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(lambda r: job(*r), ranges))  # plans made, buffers touched
        return _best_of(lambda: list(pool.map(lambda r: job(*r), ranges)))


def bench_stft(audio_s: int = BENCH_AUDIO_S) -> dict[str, Any]:
    """Time STFT + inverse STFT of `audio_s` seconds of stereo noise, four ways (seconds)."""
    import scipy.fft

    rng = np.random.default_rng(0)
    audio = rng.standard_normal((audio_s * SIGNAL.sample_rate, 2)).astype(np.float32) * 0.1
    n_frames = n_frames_for(len(audio))
    stft = Stft()

    start = time.perf_counter()
    spec = stft.forward(audio)
    restored = stft.inverse(spec, len(audio))
    cold_s = time.perf_counter() - start  # includes planning and first-touch of the outputs
    error = float(np.max(np.abs(restored - audio)) / np.max(np.abs(audio)))

    pyfftw_s = _best_of(lambda: stft.inverse(stft.forward(audio, out=spec), len(audio), out=restored))
    numpy_s = _best_of(
        lambda: reference_stft_roundtrip(
            audio, lambda x: np.fft.rfft(x, axis=1), lambda s: np.fft.irfft(s, axis=1)
        ),
        repeats=1,
    )
    scipy_s = _best_of(
        lambda: reference_stft_roundtrip(
            audio,
            lambda x: scipy.fft.rfft(x, axis=1, workers=stft.threads),
            lambda s: scipy.fft.irfft(s, axis=1, workers=stft.threads),
        ),
        repeats=1,
    )
    raw_s = _fftw_raw_s(n_frames, 2, stft.threads, stft.planner_effort)
    return {
        "audio_s": audio_s,
        "frames": n_frames,
        "ffts": 2 * n_frames * 2,
        "threads": stft.threads,
        "pyfftw_s": pyfftw_s,
        "pyfftw_first_call_s": cold_s,
        "numpy_s": numpy_s,
        "scipy_s": scipy_s,
        "fftw_raw_s": raw_s,
        "speedup_vs_numpy": numpy_s / pyfftw_s,
        "ratio_to_raw": pyfftw_s / raw_s,
        "roundtrip_rel_error": error,
    }


def format_stft_table(result: dict[str, Any]) -> str:
    """The STFT figures as a small text table."""
    lines = [
        f"STFT + ISTFT, {result['audio_s']} s stereo ({result['frames']} frames, "
        f"{result['ffts']} FFTs of {SIGNAL.n_fft}, {result['threads']} threads)",
        f"  {'pyfftw (ours)':<22}{result['pyfftw_s']:8.3f} s   (first call {result['pyfftw_first_call_s']:.3f} s)",
        f"  {'numpy.fft':<22}{result['numpy_s']:8.3f} s   ours is {result['speedup_vs_numpy']:.1f}x faster",
        f"  {'scipy.fft':<22}{result['scipy_s']:8.3f} s",
        f"  {'FFTW raw (the limit)':<22}{result['fftw_raw_s']:8.3f} s   "
        f"ours is {result['ratio_to_raw']:.2f}x the raw time",
        f"  round-trip relative error {result['roundtrip_rel_error']:.1e}",
    ]
    return "\n".join(lines)


def bench_tf_import() -> float | None:
    """Seconds a fresh Python takes to import TensorFlow (the player does it in the background)."""
    code = "import time; t = time.perf_counter(); import tensorflow; print(time.perf_counter() - t)"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    try:
        return float(result.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return None


SONG_S = 60
"""Length of the song separated whole to measure throughput (blocks in batches of 8)."""


def bench_model(card: ModelCard, blocks: int = 8, song_s: int = SONG_S) -> dict[str, Any]:
    """Load time, one block's inference time at batch 1, and whole-song throughput of a model."""
    from tuiplayer.nn import runtime
    from tuiplayer.separation.separator import Separator

    start = time.perf_counter()
    runner = runtime.load(card)
    load_s = time.perf_counter() - start
    rng = np.random.default_rng(0)
    block = rng.uniform(0, 2, (1, SIGNAL.n_frames, SIGNAL.n_bins, SIGNAL.channels)).astype(np.float32)
    start = time.perf_counter()
    runner(block)  # the first call runs eagerly (runtime.Runner)
    first_block_s = time.perf_counter() - start
    start = time.perf_counter()
    runner(block)  # the second traces the graph
    trace_block_s = time.perf_counter() - start
    block_s = min(_best_of(lambda: runner(block), repeats=1) for _ in range(blocks))
    song = (0.1 * rng.standard_normal((song_s * SIGNAL.sample_rate, 2))).astype(np.float32)
    separator = Separator(runner, batch_size=8)
    song_time_s = _best_of(lambda: separator.separate(song), repeats=1)
    return {
        "load_s": load_s,
        "first_block_s": first_block_s,
        "trace_block_s": trace_block_s,
        "block_s": block_s,
        "rtf": block_s / SIGNAL.block_seconds,
        "song_s": song_s,
        "song_rtf": song_time_s / song_s,
        "parameters": card.parameters,
    }


def format_models_table(models: dict[str, dict[str, Any]]) -> str:
    """The model figures as a small text table."""
    if not models:
        return "Models: none installed."
    lines = [f"Models (one block = {SIGNAL.n_frames} frames = {SIGNAL.block_seconds:.2f} s of audio)",
             f"  {'model':<12}{'params':>12}{'load s':>9}{'block s':>9}{'RTF':>8}{'song RTF':>10}"]
    for name, m in models.items():
        lines.append(f"  {name:<12}{m['parameters']:>12,}{m['load_s']:>9.2f}{m['block_s']:>9.3f}"
                     f"{m['rtf']:>8.3f}{m['song_rtf']:>10.3f}")
    lines.append(f"  (block: batch 1, best of 8; song RTF: a {SONG_S} s song separated whole, "
                 "blocks overlapping, batch 8, STFT and ISTFT included)")
    return "\n".join(lines)


SEEK_FRACTIONS = (0.66, 0.2, 0.85, 0.45, 0.93, 0.33, 0.75, 0.1, 0.58, 0.27, 0.97, 0.51, 0.38, 0.8)
"""Where the engine benchmark seeks, as fractions of the song: unseparated places, in a jumbled order."""

SEEK_PAUSE_S = 0.5
"""Before each seek the engine benchmark waits a random time up to this (longer than a model
call), so that seeks land anywhere in the call under way: right after the previous seek's
stems, they would always find the next call just begun."""

ENGINE_SONG_S = 600
"""Length of the song the engine benchmark separates (10 minutes, DESIGN.md memory target)."""


def peak_rss_mb() -> float:
    """This process's peak resident memory (MB): VmHWM, the high-water mark of its own memory
    map. Not getrusage's ru_maxrss: Linux carries that over an exec from the forking parent,
    so a child of `tuiplayer bench` (2.2 GB with TensorFlow and two models loaded) reported
    2,247 MB whatever it used itself."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_engine(cards: list[ModelCard], song_s: int = ENGINE_SONG_S) -> dict[str, Any]:
    """The player's engine on a long song, in this (fresh) process, without the player around
    it (`bench_player` times the real player); see `bench_engine`."""
    from tuiplayer.assets import DEMO_SONG
    from tuiplayer.audio.io import load
    from tuiplayer.nn import runtime
    from tuiplayer.separation.engine import BlocksDone, Engine, Failed, ModelReady, ModelSlot
    from tuiplayer.stems import StemBuffers

    demo = load(DEMO_SONG).samples
    audio = np.resize(demo, (song_s * SIGNAL.sample_rate, 2))  # the demo song, looped: real music
    seen: list[Any] = []
    playhead = [0]
    slots = [ModelSlot(f"{'AB'[i]}:{card.name}", card.sha256, lambda card=card: runtime.load_for_player(card),
                       StemBuffers.zeros(len(audio))) for i, card in enumerate(cards)]
    engine = Engine(audio, slots, seen.append, playhead=lambda: playhead[0])

    def until(predicate: Callable[[], bool]) -> float:
        while not predicate():
            if not engine.step():
                break
            if any(isinstance(e, Failed) for e in seen):
                raise RuntimeError(next(e.message for e in seen if isinstance(e, Failed)))
        return time.perf_counter()

    first, buffers = slots[0], slots[0].buffers
    start = time.perf_counter()
    first_block_at = until(lambda: any(isinstance(e, BlocksDone) for e in seen))
    load_s = next(e.load_s for e in seen if isinstance(e, ModelReady) and e.model == first.name)
    # seeks to unseparated places: how long until stems play there (the block in flight ends first)
    seeks, needed = [], []
    for fraction in SEEK_FRACTIONS:
        target = int(len(audio) * fraction)
        if buffers.ready(target, target + SIGNAL.hop_length):
            continue
        playhead[0] = target
        seek_start = time.perf_counter()
        seeks.append(until(lambda t=target: buffers.ready(t, t + SIGNAL.hop_length)) - seek_start)
        needed.append(len(first.song.blocks_needed(target)))  # type: ignore[union-attr]
    playhead[0] = 0
    until(lambda: first.state in ("done", "failed"))
    finished_at = time.perf_counter()
    calls = [e.seconds for e in seen if isinstance(e, BlocksDone) and e.model == first.name]
    block_s = float(np.median(calls))
    song_rtf = sum(calls) / song_s
    until(lambda: all(slot.state in ("done", "failed") for slot in slots))  # the A/B partner, whole as well
    return {
        "song_s": song_s,
        "models": [card.name for card in cards],
        "load_s": load_s,
        "first_block_s": first_block_at - start,
        "seek_s": float(np.median(seeks)) if seeks else float("nan"),
        "seek_max_s": max(seeks, default=float("nan")),
        "seeks": len(seeks),
        "seek_times_s": seeks,
        "seek_blocks_needed": needed,
        "block_s": block_s,
        "song_rtf": song_rtf,
        "song_wall_s": finished_at - start,
        "block_rtf": block_s / SIGNAL.block_seconds,
        # a block adds only its step of new audio (the rest overlaps its neighbours): per new audio
        "step_rtf": block_s / (BlockGrid(SIGNAL.n_frames * 4).step * SIGNAL.hop_length / SIGNAL.sample_rate),
        "peak_rss_mb": peak_rss_mb(),
    }


def bench_engine(names: list[str], song_s: int = ENGINE_SONG_S) -> dict[str, Any] | None:
    """Run `measure_engine` in a fresh Python (its peak memory is the engine's alone)."""
    code = ("import json, sys; from tuiplayer import bench, modelstore; "
            "print(json.dumps(bench.measure_engine([modelstore.resolve(n) for n in sys.argv[2:]], int(sys.argv[1]))))")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", code, str(song_s), *names], capture_output=True, text=True,
                            env=env, check=False)
    try:
        return json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        print(f"engine benchmark failed: {result.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None


def format_engine_table(engine: dict[str, Any]) -> str:
    return "\n".join([
        f"Engine alone: a {engine['song_s'] // 60}-minute song, {' + '.join(engine['models'])} (A/B), "
        "in one process, no screen or sound (bench --player times the real player)",
        f"  first block at the playhead {engine['first_block_s']:.2f} s after start "
        f"(model load {engine['load_s']:.2f} s)",
        f"  seek to an unseparated place: stems play there after {engine['seek_s']:.2f} s "
        f"({engine['seek_s'] / engine['block_s']:.2f}x one block's inference, {engine['block_s']:.3f} s; "
        f"median of {engine.get('seeks', len(SEEK_FRACTIONS))} seeks, "
        f"slowest {engine.get('seek_max_s', float('nan')):.2f} s)",
        f"  whole song: RTF {engine['song_rtf']:.4f} vs one block's RTF {engine['block_rtf']:.4f} "
        f"({engine['song_rtf'] / engine['block_rtf']:.2f}x; one block per model call, as in the player)",
        f"    per block of new audio (blocks overlap by {DEFAULT_OVERLAP} of {SIGNAL.n_frames} frames, the price of "
        f"no seams): RTF {engine['step_rtf']:.4f}, the song {engine['song_rtf'] / engine['step_rtf']:.2f}x that",
        f"  peak RSS holding the song separated by both models: {engine['peak_rss_mb']:.0f} MB",
    ])


def bench_startup(repeats: int = 3) -> float:
    """Seconds from launching `tuiplayer demo --no-audio` to its first drawn screen, with the
    original mix's clock already running (best of `repeats`; Python's own start included)."""
    from tuiplayer.player.app import STARTUP_PROBE_LINE

    env = {**os.environ, "TUIPLAYER_STARTUP_PROBE": "1"}
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-m", "tuiplayer", "demo", "--no-audio"], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert child.stdout is not None
        for line in child.stdout:
            if STARTUP_PROBE_LINE in line:
                best = min(best, time.perf_counter() - start)
                break
        child.wait(60)
    return best


def run(
    json_path: Path | None = None,
    *,
    force: bool = False,
    audio_s: int = BENCH_AUDIO_S,
    models: list[str] | None = None,
    engine_s: int = ENGINE_SONG_S,
) -> dict[str, Any]:
    """Run every benchmark, print the tables, and write JSON when asked.

    models: names or folders of the models to measure (default: every installed one).
    """
    from tuiplayer import modelstore

    if json_path is not None:
        check_writable(json_path, force=force)
    cards = [modelstore.resolve(m) for m in models] if models is not None else modelstore.installed()
    result: dict[str, Any] = {"tf_import_s": bench_tf_import(), "stft": bench_stft(audio_s), "models": {}}
    print(format_stft_table(result["stft"]))
    tf_import = result["tf_import_s"]
    print(f"\nTensorFlow import: {tf_import:.2f} s" if tf_import else "\nTensorFlow import: failed")
    result["player_startup_s"] = bench_startup()
    print(f"Player start-up (launch → window drawn, original mix playing): {result['player_startup_s']:.2f} s "
          "(target < 1 s)")
    for card in cards:
        result["models"][card.name] = bench_model(card)
    print("\n" + format_models_table(result["models"]))
    if cards:
        index = modelstore.read_index()
        pair = [index["default"] or cards[0].name, index["ab"] or index["default"] or cards[0].name]
        engine = bench_engine(pair, engine_s)
        if engine:
            result["engine"] = engine
            print("\n" + format_engine_table(engine))
            for name in set(pair):
                if name in result["models"]:
                    result["models"][name].update(
                        {k: engine[k] for k in ("first_block_s", "seek_s", "peak_rss_mb")})
    if json_path is not None:
        write_text(json_path, json.dumps(result, indent=2) + "\n", force=force)
    return result


def run_link(json_path: Path | None = None, *, force: bool = False, song_s: int = 60) -> dict[str, Any]:
    """`bench --link`: the real player with only PULSE_SERVER set, through a relay that delays
    like a network link (bench_player.LINK), at each of LINK_LATENCIES_MS, quiet and beside one
    busy process: what was heard. Prints and returns the figures."""
    from tuiplayer import bench_player
    from tuiplayer.playback.output import LINK_LATENCY_S

    if json_path is not None:
        check_writable(json_path, force=force)
    bench_player.check_tools()
    round_trip, jitter = bench_player.LINK
    result: dict[str, Any] = {"link": []}
    for busy in (False, True):
        print(f"Player over a link ({1000 * round_trip:.0f} ms round trip, up to {1000 * jitter:.0f} ms more), "
              f"a {song_s} s song, {'beside one busy process' if busy else 'quiet'}; the default for PULSE_SERVER "
              f"is {1000 * LINK_LATENCY_S:.0f} ms:", flush=True)
        for latency_ms in bench_player.LINK_LATENCIES_MS:
            figures = bench_player.run_link(latency_ms, song_s, busy=busy)
            result["link"].append(figures)
            print(bench_player.format_link(figures), flush=True)
    if json_path is not None:
        write_text(json_path, json.dumps(result, indent=2) + "\n", force=force)
    return result


def run_player(json_path: Path | None = None, *, force: bool = False, soak: bool = False,
               song_s: int = 60) -> dict[str, Any]:
    """`bench --player`: the real player from launch, quiet and beside one busy process, then at
    80 % tempo + 2 semitones beside the busy process; with soak, a 10-minute song each way too
    (see tuiplayer.bench_player). Prints and returns the figures."""
    from tuiplayer import bench_player

    if json_path is not None:
        check_writable(json_path, force=force)
    bench_player.check_tools()
    result: dict[str, Any] = {"player": [], "soak": []}
    for busy in (False, True):
        figures = bench_player.run_player(song_s, busy=busy)
        result["player"].append(figures)
        print(bench_player.format_player(figures) + "\n", flush=True)
    if stretch.available():
        result["stretched"] = bench_player.run_stretched(song_s, busy=True)
        print(bench_player.format_stretched(result["stretched"]) + "\n", flush=True)
    else:
        print(f"Player at another tempo: not measured ({stretch.MISSING})\n", flush=True)
    if soak:
        for busy in (False, True):
            figures = bench_player.run_soak(busy=busy)
            result["soak"].append(figures)
            print(bench_player.format_soak(figures) + "\n", flush=True)
    if json_path is not None:
        write_text(json_path, json.dumps(result, indent=2) + "\n", force=force)
    return result
