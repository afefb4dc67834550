"""Dataset reader, augmentation, training examples and the tf.data pipeline (tuiplayer.data, nn.pipeline).

Fixture datasets are made here with numpy + soundfile: every stem is a sine of its own
frequency, so a stem read back can be recognised by its dominant frequency.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy import signal as sps

from tuiplayer.config import SIGNAL, STEMS
from tuiplayer.data import augment as aug
from tuiplayer.data.augment import AugmentConfig, StemEffects, apply_stem_effects, augment_stems
from tuiplayer.data.examples import (
    FULL_LABELS,
    ExampleConfig,
    ExampleMaker,
    draw_plan,
    example_rng,
    iterate_batches,
)
from tuiplayer.data.store import StemStore
from tuiplayer.data.tracks import find_tracks
from tuiplayer.dsp.stft import Stft
from tuiplayer.errors import BadInput

RATE = SIGNAL.sample_rate
SECONDS = 6.0
FREQS_HZ = {"vocals": 440.0, "drums": 1760.0, "bass": 110.0, "other": 880.0}
"""The tone of each stem in the fixture tracks (mixture = their sum)."""

FAST = ExampleConfig(planner_effort="FFTW_ESTIMATE")
"""Examples without FFTW's measuring planner (instant plans, for tests)."""

NO_CHANGE = AugmentConfig.off()


def tone(freq_hz: float, seconds: float = SECONDS, sample_rate: int = RATE, channels: int = 2,
         level: float = 0.25, phase: float = 0.0) -> np.ndarray:
    """A sine, float32 (n, channels), a different phase per channel."""
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return np.stack([level * np.sin(2 * np.pi * freq_hz * t + phase + c) for c in range(channels)],
                    axis=1).astype(np.float32)


def write_track(folder: Path, seconds: float = SECONDS, sample_rate: int = RATE, suffix: str = ".wav",
                skip: tuple[str, ...] = (), rates: dict[str, int] | None = None,
                lengths: dict[str, float] | None = None, channels: int = 2, mixture: bool = True,
                phase: float = 0.0) -> Path:
    """A MUSDB18-HQ track folder of tones; skip/rates/lengths break it on purpose."""
    folder.mkdir(parents=True, exist_ok=True)
    parts = {stem: tone(FREQS_HZ[stem], seconds, sample_rate, channels, phase=phase) for stem in STEMS}
    if mixture:
        parts["mixture"] = sum(parts.values())
    for name, samples in parts.items():
        if name in skip:
            continue
        rate = (rates or {}).get(name, sample_rate)
        n = round((lengths or {}).get(name, seconds) * rate)
        out = tone(FREQS_HZ[name], n / rate, rate, channels) if name in (rates or {}) else samples[:n]
        sf.write(folder / f"{name}{suffix}", out, rate, subtype="FLOAT" if suffix == ".wav" else "PCM_24")
    return folder


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """DATASET/train/{song0,song1,song2} and DATASET/test/song3, 6 s each."""
    root = tmp_path / "DATASET"
    for i in range(3):
        write_track(root / "train" / f"song{i}", phase=i)
    write_track(root / "test" / "song3", phase=3)
    return root


def dominant_hz(samples: np.ndarray, sample_rate: int = RATE) -> float:
    """The strongest frequency of (n, channels) audio."""
    spectrum = np.abs(np.fft.rfft(samples.mean(axis=1)))
    return float(np.argmax(spectrum) * sample_rate / len(samples))


def store_of(n_tracks: int = 3, seconds: float = SECONDS, seed: int = 0) -> StemStore:
    """A StemStore of noise stems held in memory."""
    rng = np.random.default_rng(seed)
    n = round(seconds * RATE)
    return StemStore.from_arrays(
        [(0.1 * rng.standard_normal((len(STEMS), n, 2))).astype(np.float32) for _ in range(n_tracks)]
    )


# --- reading ------------------------------------------------------------------------------


def test_find_tracks_split_layout(dataset: Path) -> None:
    tracks = find_tracks(dataset)
    assert [(t.subset, t.name) for t in tracks] == [("test", "song3"), ("train", "song0"),
                                                    ("train", "song1"), ("train", "song2")]
    assert [t.name for t in find_tracks(dataset, "train")] == ["song0", "song1", "song2"]
    assert [t.name for t in find_tracks(dataset, subset="test")] == ["song3"]
    track = tracks[0]
    assert track.sample_rate == RATE and track.duration_s == pytest.approx(SECONDS)
    assert [ref.path.stem for ref in track.stems] == list(STEMS)
    assert track.mixture is not None and track.mixture.path.name == "mixture.wav"


def test_find_tracks_flat_layout_and_single_track(tmp_path: Path) -> None:
    for i in range(2):
        write_track(tmp_path / "flat" / f"t{i}", seconds=1.0)
    (tmp_path / "flat" / "notes").mkdir()  # a folder without audio is not a track
    (tmp_path / "flat" / "README.txt").write_text("hello")
    tracks = find_tracks(tmp_path / "flat")
    assert [(t.subset, t.name) for t in tracks] == [(None, "t0"), (None, "t1")]
    assert [t.name for t in find_tracks(tmp_path / "flat" / "t1")] == ["t1"]


def test_load_stems_in_stems_order(dataset: Path) -> None:
    track = find_tracks(dataset, "train")[0]
    stems = track.load_stems()
    assert list(stems) == list(STEMS)
    for stem, samples in stems.items():
        assert samples.dtype == np.float32 and samples.shape == (round(SECONDS * RATE), 2)
        assert dominant_hz(samples) == pytest.approx(FREQS_HZ[stem], abs=1.0)
    array = track.load_stem_array()
    assert array.shape == (len(STEMS), round(SECONDS * RATE), 2)
    np.testing.assert_allclose(track.load_mixture(), array.sum(axis=0), atol=1e-6)


def test_flac_mono_and_missing_mixture(tmp_path: Path) -> None:
    write_track(tmp_path / "d" / "a", seconds=1.0, suffix=".flac", channels=1, mixture=False)
    (track,) = find_tracks(tmp_path / "d")
    assert track.mixture is None
    stems = track.load_stem_array()
    assert stems.shape == (4, RATE, 2)
    np.testing.assert_array_equal(stems[..., 0], stems[..., 1])  # mono → both channels
    np.testing.assert_allclose(track.load_mixture(), stems.sum(axis=0), atol=1e-6)


def test_consistent_other_rate_is_resampled(tmp_path: Path) -> None:
    write_track(tmp_path / "d" / "a", seconds=1.0, sample_rate=22050)
    (track,) = find_tracks(tmp_path / "d")
    assert track.sample_rate == 22050 and not track.native_rate
    stems = track.load_stems()
    assert stems["bass"].shape == (RATE, 2)
    assert dominant_hz(stems["bass"]) == pytest.approx(FREQS_HZ["bass"], abs=1.0)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
def test_stem_mp4(tmp_path: Path) -> None:
    """A 5-stream ALAC .stem.mp4 (MUSDB18 order: mixture, drums, bass, other, vocals)."""
    source = write_track(tmp_path / "wavs", seconds=2.0)
    order = ["mixture", "drums", "bass", "other", "vocals"]
    for name in order:  # 16-bit PCM: ALAC is lossless on it
        sf.write(source / f"{name}16.wav", sf.read(source / f"{name}.wav")[0], RATE, subtype="PCM_16")
    target = tmp_path / "DATASET" / "train" / "My Song.stem.mp4"
    target.parent.mkdir(parents=True)
    command = ["ffmpeg", "-v", "error", "-nostdin"]
    for name in order:
        command += ["-i", str(source / f"{name}16.wav")]
    for i in range(len(order)):
        command += ["-map", f"{i}:a"]
    subprocess.run([*command, "-c:a", "alac", str(target)], check=True)

    (track,) = find_tracks(tmp_path / "DATASET", "train")
    assert track.name == "My Song" and track.path == target
    assert track.duration_s == pytest.approx(2.0, abs=0.05)
    stems = track.load_stems()
    assert list(stems) == list(STEMS)
    for stem, samples in stems.items():
        assert dominant_hz(samples) == pytest.approx(FREQS_HZ[stem], abs=1.0), stem
        expected = sf.read(source / f"{stem}16.wav", dtype="float32")[0]
        np.testing.assert_allclose(samples, expected, atol=1e-4)
    np.testing.assert_allclose(track.load_mixture(), sum(stems.values()), atol=1e-3)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
def test_real_musdb18_preview_from_stempeg() -> None:
    """The 7-second MUSDB18 preview that the stempeg package carries (DESIGN.md §6), if installed."""
    spec = importlib.util.find_spec("stempeg")
    if spec is None or spec.origin is None:
        pytest.skip("stempeg is not installed (pip install stempeg)")
    data = Path(spec.origin).parent / "data"
    (track,) = [t for t in find_tracks(data) if t.name == "The Easton Ellises - Falcon 69"]
    stems = track.load_stem_array()
    mixture = track.load_mixture()
    assert stems.shape == (4, *mixture.shape) and mixture.shape[1] == 2
    assert len(mixture) / RATE == pytest.approx(track.duration_s, abs=0.05)
    loudness_db = 10 * np.log10((stems**2).mean(axis=(1, 2)))
    assert np.all(loudness_db > -40.0)  # every stem plays
    residual = mixture - stems.sum(axis=0)  # AAC and mastering: close, not exact
    assert 10 * np.log10((residual**2).sum() / (mixture**2).sum()) < -10.0


# --- bad dataset folders: one clear line each -----------------------------------------------


def _error(root: Path, subset: str | None = None) -> str:
    with pytest.raises(BadInput) as caught:
        find_tracks(root, subset)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_missing_stem_file(tmp_path: Path) -> None:
    write_track(tmp_path / "d" / "Broken Song", seconds=1.0, skip=("bass",))
    message = _error(tmp_path / "d")
    assert "Broken Song" in message and "missing stem file bass.wav" in message


def test_stems_of_different_lengths(tmp_path: Path) -> None:
    write_track(tmp_path / "d" / "Short", seconds=1.0, lengths={"drums": 0.9})
    message = _error(tmp_path / "d")
    assert "Short" in message and "different lengths" in message
    assert f"drums {round(0.9 * RATE)} samples" in message and f"vocals {RATE} samples" in message


def test_stems_of_different_rates(tmp_path: Path) -> None:
    write_track(tmp_path / "d" / "Odd Rate", seconds=1.0, rates={"vocals": 48000})
    message = _error(tmp_path / "d")
    assert "Odd Rate" in message and "different sample rates" in message and "vocals 48000 Hz" in message


def test_empty_and_missing_dataset(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert "no tracks found" in _error(tmp_path / "empty")
    (tmp_path / "split" / "train").mkdir(parents=True)
    assert "no tracks found" in _error(tmp_path / "split", "train")
    assert "has no test/ folder" in _error(tmp_path / "split", "test")
    assert "no such dataset folder" in _error(tmp_path / "nowhere")


def test_unreadable_stem_file(tmp_path: Path) -> None:
    folder = write_track(tmp_path / "d" / "Corrupt", seconds=1.0)
    (folder / "other.wav").write_bytes(b"RIFF not really a wav file")
    message = _error(tmp_path / "d")
    assert "Corrupt" in message and "cannot read other.wav" in message


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
def test_stem_mp4_without_five_streams(tmp_path: Path) -> None:
    source = tmp_path / "one.wav"
    sf.write(source, tone(440.0, 0.5), RATE, subtype="PCM_16")
    target = tmp_path / "d" / "Single.stem.mp4"
    target.parent.mkdir()
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(source), "-c:a", "alac", str(target)], check=True)
    message = _error(tmp_path / "d")
    assert "Single.stem.mp4" in message and "has 1 audio streams" in message


# --- the store ------------------------------------------------------------------------------


def test_store_reads_excerpts_with_zeros_outside(dataset: Path) -> None:
    tracks = find_tracks(dataset, "train")
    memory = StemStore.open(tracks)
    disk = StemStore.open(tracks, in_memory=False)
    assert memory.nbytes == 3 * len(STEMS) * round(SECONDS * RATE) * 2 * 4 and disk.nbytes == 0
    n = round(SECONDS * RATE)
    stems = tracks[1].load_stem_array()
    for start in (-100, 0, 5000, n - 50):
        for store in (memory, disk):
            excerpt = store.read(1, 2, start, 1000)
            expected = np.zeros((1000, 2), np.float32)
            lo, hi = max(start, 0), min(start + 1000, n)
            expected[lo - start : hi - start] = stems[2, lo:hi]
            np.testing.assert_array_equal(excerpt, expected)


# --- augmentation ---------------------------------------------------------------------------


def _response_db(sos: np.ndarray, freq_hz: float) -> float:
    _, h = sps.sosfreqz(sos, worN=[freq_hz], fs=RATE)
    return float(20 * np.log10(np.abs(h[0])))


def test_filters_have_the_asked_response() -> None:
    tilt = aug.tilt_sos(6.0, 1000.0, RATE)
    assert _response_db(tilt, 20.0) == pytest.approx(-3.0, abs=0.1)
    assert _response_db(tilt, 18000.0) == pytest.approx(3.0, abs=0.2)
    assert _response_db(tilt, 1000.0) == pytest.approx(0.0, abs=0.1)
    low_shelf = aug.shelf_sos(200.0, -8.0, RATE, high=False)
    assert _response_db(low_shelf, 20.0) == pytest.approx(-8.0, abs=0.2)
    assert _response_db(low_shelf, 10000.0) == pytest.approx(0.0, abs=0.1)
    peak = aug.peak_sos(2000.0, 9.0, 1.0, RATE)
    assert _response_db(peak, 2000.0) == pytest.approx(9.0, abs=0.01)
    assert _response_db(peak, 50.0) == pytest.approx(0.0, abs=0.1)
    highpass = aug.pass_sos(100.0, RATE, high=True)
    assert _response_db(highpass, 100.0) == pytest.approx(-3.0, abs=0.05)
    assert _response_db(highpass, 10.0) < -35.0
    lowpass = aug.pass_sos(30000.0, RATE, high=False)  # clamped below Nyquist
    assert _response_db(lowpass, aug.MAX_FILTER_HZ_FRACTION * RATE) == pytest.approx(-3.0, abs=0.05)


def test_gain_swap_saturate_reverb() -> None:
    x = tone(440.0, 0.5)
    np.testing.assert_allclose(aug.apply_gain(x, -6.0), x * 10 ** (-6 / 20), rtol=1e-6)
    swapped = aug.swap_channels(x)
    np.testing.assert_array_equal(swapped[:, 0], x[:, 1])
    np.testing.assert_array_equal(swapped[:, 1], x[:, 0])
    squeezed = aug.saturate(x, 2.0)
    peak = np.abs(x).max()
    assert np.abs(squeezed).max() == pytest.approx(peak * np.tanh(2.0) / 2.0, rel=1e-4)
    assert np.all(np.sign(squeezed) == np.sign(x)) and np.all(np.abs(squeezed) <= np.abs(x) + 1e-7)
    np.testing.assert_array_equal(aug.saturate(np.zeros((10, 2), np.float32), 2.0), 0.0)
    ir = aug.reverb_ir(0.5, 0.01, RATE, np.random.default_rng(0))
    assert ir.shape == (round(0.51 * RATE), 2) and ir.dtype == np.float32
    np.testing.assert_array_equal(ir[: round(0.01 * RATE)], 0.0)
    np.testing.assert_allclose((ir**2).sum(axis=0), 1.0, rtol=1e-5)
    head, tail = np.abs(ir[441:4410]).mean(), np.abs(ir[-4410:]).mean()
    assert tail < head / 100  # decays towards −60 dB
    assert not np.allclose(ir[:, 0], ir[:, 1])  # a wide room: decorrelated channels
    wet = aug.add_reverb(x, ir, -6.0)
    assert wet.shape == x.shape and wet.dtype == np.float32 and not np.allclose(wet, x)


def test_augment_is_deterministic_and_changes_what_it_should() -> None:
    stems = store_of(1).read(0, 0, 0, 20000)[None].repeat(4, axis=0)
    first, second, third = stems.copy(), stems.copy(), stems.copy()
    drawn = augment_stems(first, AugmentConfig(), np.random.default_rng(7))
    assert augment_stems(second, AugmentConfig(), np.random.default_rng(7)) == drawn
    augment_stems(third, AugmentConfig(), np.random.default_rng(8))
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, third)
    assert first.dtype == np.float32 and first.shape == stems.shape
    untouched = stems.copy()
    augment_stems(untouched, NO_CHANGE, np.random.default_rng(7))
    np.testing.assert_array_equal(untouched, stems)


def test_gain_within_bounds_and_swap_only() -> None:
    config = AugmentConfig.off()
    config = AugmentConfig(**{**config.__dict__, "gain_db": (-6.0, 6.0), "p_swap": 0.5})
    rng = np.random.default_rng(0)
    x = np.stack([tone(440.0, 0.1, level=0.3)[:, 0], tone(440.0, 0.1, level=0.1)[:, 0]], axis=1)
    swaps = 0
    for _ in range(200):
        effects = aug.draw_stem_effects(config, rng)
        assert -6.0 <= effects.gain_db <= 6.0
        assert effects.tilt_db is None and effects.reverb is None and effects.drive is None
        y = apply_stem_effects(x, effects)
        gain = 10 ** (effects.gain_db / 20)
        expected = (x[:, ::-1] if effects.swap else x) * gain
        np.testing.assert_allclose(y, expected, rtol=1e-6)
        swaps += effects.swap
    assert 60 < swaps < 140


def test_silence_and_each_change_alone() -> None:
    x = store_of(1).read(0, 0, 0, 30000)
    assert not apply_stem_effects(x, StemEffects(silence=True)).any()
    for effects in (StemEffects(tilt_db=6.0), StemEffects(highpass_hz=200.0), StemEffects(lowpass_hz=3000.0),
                    StemEffects(peak=(1000.0, 6.0, 1.0)), StemEffects(drive=1.5),
                    StemEffects(reverb=(0.3, -10.0, 0.0, 1))):
        y = apply_stem_effects(x, effects)
        assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()
        assert not np.allclose(y, x), effects


def test_augment_config_validation() -> None:
    with pytest.raises(ValueError, match="p_swap"):
        AugmentConfig(p_swap=1.5)
    with pytest.raises(ValueError, match="gain_db"):
        AugmentConfig(gain_db=(6.0, -6.0))
    with pytest.raises(ValueError, match="highpass_hz"):
        AugmentConfig(highpass_hz=(0.0, 100.0))


# --- examples -------------------------------------------------------------------------------


def test_draw_plan() -> None:
    lengths = np.array([300_000, 150_000, 250_000])
    rng = np.random.default_rng(0)
    remixed = 0
    for _ in range(200):
        same = draw_plan(rng, lengths, 199_680, p_remix=0.0)
        assert len(set(same.track.tolist())) == 1 and len(set(same.start.tolist())) == 1
        mixed = draw_plan(rng, lengths, 199_680, p_remix=1.0)
        remixed += len(set(mixed.track.tolist())) > 1
        for plan in (same, mixed):
            room = np.maximum(lengths[plan.track] - 199_680, 0)
            assert np.all(plan.start >= 0) and np.all(plan.start <= room)
    assert remixed > 150


def test_example_shapes_and_content() -> None:
    store = store_of(2)
    maker = ExampleMaker(store, None, ExampleConfig(planner_effort="FFTW_ESTIMATE", with_mixture_spec=True))
    mixture, stems, labels, spec = maker.example(seed=3, index=5)
    np.testing.assert_array_equal(labels, FULL_LABELS)  # a multitrack song: every stem known
    assert mixture.shape == (192, 1024, 2) and mixture.dtype == np.float32
    assert stems.shape == (192, 1024, 2, 4) and stems.dtype == np.float32
    assert spec.shape == (192, 2049, 2) and spec.dtype == np.complex64
    # without augmentation an example is the STFT of one track's excerpt, frames wholly inside it
    rng = example_rng(3, 5)
    plan = draw_plan(rng, store.lengths, FAST.excerpt_samples, 0.0)
    excerpt = np.stack([store.read(int(plan.track[0]), j, int(plan.start[0]), FAST.excerpt_samples)
                        for j in range(4)])
    stft = Stft(planner_effort="FFTW_ESTIMATE")
    for j in range(4):
        expected = np.abs(stft.forward(excerpt[j])[2:194, :1024])
        np.testing.assert_allclose(stems[..., j], expected, rtol=1e-5, atol=1e-5)
    whole = stft.forward(excerpt.sum(axis=0))[2:194]
    np.testing.assert_allclose(mixture, np.abs(whole[:, :1024]), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(spec, whole, rtol=1e-4, atol=1e-4)


def test_example_frames_are_the_frames_of_the_whole_track() -> None:
    """An excerpt starting at 8 hops gives frames 10 … 201 of the whole track's STFT (no edge padding)."""
    store = store_of(1)
    maker = ExampleMaker(store, None, FAST)
    start = 8 * SIGNAL.hop_length
    excerpt = np.stack([store.read(0, j, start, FAST.excerpt_samples) for j in range(4)])
    mixture = np.empty((192, 1024, 2), np.float32)
    stems = np.empty((192, 1024, 2, 4), np.float32)
    maker.spectrograms(excerpt, mixture, stems)
    whole = Stft(planner_effort="FFTW_ESTIMATE").forward(store.read(0, 1, 0, int(store.lengths[0])))
    np.testing.assert_allclose(stems[..., 1], np.abs(whole[10:202, :1024]), rtol=1e-4, atol=1e-4)


def test_mixture_is_the_sum_of_augmented_stems() -> None:
    """Every change on: the mixture spectrogram is that of the sum of the augmented stems."""
    everything = AugmentConfig(p_remix=1.0, p_swap=0.5, p_silence=0.2, p_tilt=1.0, p_highpass=1.0, p_lowpass=1.0,
                               p_peak=1.0, p_saturate=1.0, p_reverb=1.0)
    maker = ExampleMaker(store_of(3), everything, FAST)
    audio = maker.excerpt_audio(example_rng(0, 1))
    mixture = np.empty((192, 1024, 2), np.float32)
    stems = np.empty((192, 1024, 2, 4), np.float32)
    maker.spectrograms(audio, mixture, stems)
    stft = Stft(planner_effort="FFTW_ESTIMATE")
    expected = np.abs(stft.forward(audio.sum(axis=0))[2:194, :1024])
    np.testing.assert_allclose(mixture, expected, rtol=1e-4, atol=1e-4)
    assert np.all(stems.sum(axis=-1) >= mixture - 1e-4)  # triangle inequality per bin
    maker.make(example_rng(0, 1), mixture_again := np.empty_like(mixture), np.empty_like(stems),
               np.empty((4, 5), np.float32))
    np.testing.assert_array_equal(mixture_again, mixture)  # make = excerpt_audio + spectrograms


def test_iterate_batches_deterministic_whatever_the_workers() -> None:
    store = store_of(3)
    one = list(iterate_batches(store, 3, seed=11, n_batches=2, workers=1, config=FAST))
    two = list(iterate_batches(store, 3, seed=11, n_batches=2, workers=2, prefetch_batches=0, config=FAST))
    other = next(iterate_batches(store, 3, seed=12, n_batches=1, config=FAST))
    assert len(one) == len(two) == 2
    for a, b in zip(one, two, strict=True):
        assert a[0].shape == (3, 192, 1024, 2) and a[1].shape == (3, 192, 1024, 2, 4)
        assert a[0].dtype == a[1].dtype == np.float32
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(one[0][0], other[0])
    # example k of the stream = ExampleMaker.example(seed, k)
    mixture, stems, _ = ExampleMaker(store, AugmentConfig(), FAST).example(11, 4)
    np.testing.assert_array_equal(mixture, one[1][0][1])
    np.testing.assert_array_equal(stems, one[1][1][1])


def test_iterate_batches_from_tracks(dataset: Path) -> None:
    tracks = find_tracks(dataset, "train")
    batches = list(iterate_batches(tracks, 2, seed=0, augment=None, n_batches=1, cache_in_memory=False,
                                   config=FAST))
    assert len(batches) == 1
    _, stems, labels = batches[0]
    assert labels.shape == (2, 4, 5)
    # no augmentation, tones: each stem's energy sits at its own frequency
    for j, stem in enumerate(STEMS):
        strongest_bin = int(np.argmax(stems[0, ..., j].sum(axis=(0, 2))))
        assert strongest_bin * RATE / SIGNAL.n_fft == pytest.approx(FREQS_HZ[stem], abs=RATE / SIGNAL.n_fft)
    with pytest.raises(ValueError, match="batch_size"):
        iterate_batches(tracks, 0, seed=0)


# --- tf.data --------------------------------------------------------------------------------


def test_make_dataset_yields_the_documented_batches() -> None:
    pytest.importorskip("tensorflow")
    from tuiplayer.nn.pipeline import make_dataset

    store = store_of(3)
    config = ExampleConfig(planner_effort="FFTW_ESTIMATE", with_mixture_spec=True)
    dataset = make_dataset(store, 2, seed=5, n_batches=2, workers=2, config=config)
    batches = [tuple(array.numpy() for array in batch) for batch in dataset]
    assert len(batches) == 2
    mixture, stems, labels, spec = batches[0]
    assert labels.shape == (2, 4, 5) and labels.dtype == np.float32
    assert mixture.shape == (2, 192, 1024, 2) and mixture.dtype == np.float32
    assert stems.shape == (2, 192, 1024, 2, 4) and stems.dtype == np.float32
    assert spec.shape == (2, 192, 2049, 2) and spec.dtype == np.complex64
    assert dataset.element_spec[1].shape == (2, 192, 1024, 2, 4)
    plain = list(iterate_batches(store, 2, seed=5, n_batches=2, config=config))
    for from_tf, from_numpy in zip(batches, plain, strict=True):
        for a, b in zip(from_tf, from_numpy, strict=True):
            np.testing.assert_array_equal(a, b)
    endless = make_dataset(store, 1, seed=0, config=FAST)
    assert endless.cardinality().numpy() > 1_000_000


def test_pipeline_module_imports_without_tensorflow() -> None:
    import sys

    code = "import sys, tuiplayer.nn.pipeline, tuiplayer.data.examples; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"



def test_speed_measure_counts_examples() -> None:
    from tuiplayer.data.speed import measure

    batches = iter([(np.zeros(1),)] * 6)
    report = measure(batches, batch_size=4, n_batches=5, workers=1)
    assert report.examples_per_s > 0 and report.n_batches == 5 and report.batch_size == 4
    with pytest.raises(StopIteration):
        next(batches)
