"""The separation core: block grid, cross-fades, unity remix, no seams."""

from __future__ import annotations

import numpy as np
import pytest

from tuiplayer.config import SIGNAL
from tuiplayer.dsp.stft import Stft
from tuiplayer.separation.blocks import BlockGrid
from tuiplayer.separation.separator import Separator


def error_db(estimate: np.ndarray, reference: np.ndarray) -> float:
    return float(10 * np.log10((np.sum((estimate - reference) ** 2) + 1e-30) / np.sum(reference**2)))


@pytest.mark.parametrize("n_frames", [1, 100, 192, 193, 335, 336, 337, 1000])
def test_grid_covers_every_frame_with_total_weight_one(n_frames: int) -> None:
    grid = BlockGrid(n_frames)
    total = np.zeros(n_frames)
    for index in range(len(grid)):
        first, stop = grid.frames(index)
        total[first:stop] += grid.weights(index)
    np.testing.assert_allclose(total, 1.0, atol=1e-6)
    assert grid.block_at(0) == 0 and grid.block_at(n_frames - 1) == len(grid) - 1


def test_grid_rejects_overlaps_beyond_half_a_block() -> None:
    with pytest.raises(ValueError, match="overlap"):
        BlockGrid(500, overlap=120)


def spectral_predict(magnitude: np.ndarray) -> np.ndarray:
    """A stand-in model that depends on its whole input (like a network with context):
    stem j takes a band of bins, scaled by the block's mean level."""
    batch = magnitude.shape[0]
    masks = np.zeros((*magnitude.shape, 4), dtype=np.float32)
    bands = np.array_split(np.arange(SIGNAL.n_bins), 4)
    for j, band in enumerate(bands):
        masks[:, :, band, :, j] = 1.0
    level = magnitude.reshape(batch, -1).mean(axis=1)[:, None, None, None, None]
    return masks * (0.5 + level / (1 + level)) + 0.01


@pytest.fixture(scope="module")
def separator() -> Separator:
    return Separator(spectral_predict, stft=Stft(planner_effort="FFTW_ESTIMATE"))


def test_stems_sum_to_the_input(separator: Separator) -> None:
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, (44100 * 7 + 123, 2)).astype(np.float32)
    stems = separator.separate(audio)
    assert stems.shape == (len(audio), 2, 4)
    assert error_db(stems.sum(axis=-1), audio) < -60


def test_blocks_in_any_order_give_the_same_stems(separator: Separator) -> None:
    audio = np.random.default_rng(1).uniform(-0.5, 0.5, (44100 * 10, 2)).astype(np.float32)
    in_order = separator.separate(audio)
    song = separator.start(audio)
    order = list(range(len(song.grid)))[::-1]
    for index in order:
        separator.run_blocks(song, [index])
    assert song.complete
    # the same up to float16 storage (rounding differs with the order of the additions)
    assert error_db(song.stems, in_order) < -60


def test_the_band_split_model_separates_bands(separator: Separator) -> None:
    """A low tone lands in stem 0 (the lowest band), a high one in stem 3."""
    t = np.arange(44100 * 6) / 44100
    low, high = 0.3 * np.sin(2 * np.pi * 200 * t), 0.3 * np.sin(2 * np.pi * 9000 * t)
    audio = np.stack([low + high] * 2, axis=1).astype(np.float32)
    stems = separator.separate(audio)
    inner = slice(44100, -44100)
    assert error_db(stems[inner, 0, 0], low[inner]) < -30
    assert error_db(stems[inner, 0, 3], high[inner]) < -30


def test_evaluation_rows_order_oracle_above_model_above_floor() -> None:
    """On two tracks of band-limited stems, the band-split model scores between the rows."""
    from tuiplayer import evaluation

    rng = np.random.default_rng(3)
    t = np.arange(44100 * 5) / 44100

    def track(shift: float) -> np.ndarray:
        tones = [200, 2500, 5500, 9000]  # one tone per quarter of the model's band
        stems = np.stack(
            [np.stack([0.2 * np.sin(2 * np.pi * (f + shift) * t)] * 2, 1) for f in tones], axis=-1
        )
        return (stems + 0.01 * rng.standard_normal(stems.shape)).astype(np.float32)

    model = Separator(spectral_predict, stft=Stft(planner_effort="FFTW_ESTIMATE"))
    scores = evaluation.evaluate([("a", track(0)), ("b", track(37))], {"bands": model})
    table = evaluation.summary(scores)
    assert set(scores) == {"bands", "oracle", "mix4"} and set(scores["oracle"]) == {"a", "b"}
    assert table["oracle"]["mean"] > table["bands"]["mean"] > table["mix4"]["mean"] + 3
    assert "oracle" in evaluation.format_table(scores)
    same = track(0)[..., 0]
    assert evaluation.sdr(same, same) > 90


def context_predict(magnitude: np.ndarray) -> np.ndarray:
    """A stand-in model with ±16 frames of temporal context and no sense of absolute position
    (like an ideal convolutional network): each stem's mask follows its band's level smoothed
    over 33 frames, zero-padded at the block's edges, so a model call near a block edge sees
    less context and answers differently there. Only the cross-fades can hide that.
    magnitude (batch, n_frames, n_bins, 2) → masks (batch, n_frames, n_bins, 2, 4)."""
    bands = np.array_split(np.arange(SIGNAL.n_bins), 4)
    kernel = np.ones(33, dtype=np.float32) / 33
    masks = np.empty((*magnitude.shape, 4), dtype=np.float32)
    for j, band in enumerate(bands):
        level = magnitude[:, :, band, :].mean(axis=(2, 3))  # (batch, n_frames)
        smooth = np.stack([np.convolve(row, kernel, mode="same") for row in level])
        masks[..., j] = (smooth**2)[:, :, None, None] + 1e-6
    return masks


@pytest.mark.parametrize("shift_frames", [96, 37])
def test_a_shifted_block_grid_leaves_no_seams(shift_frames: int) -> None:
    """The same song with `shift_frames` hops of silence in front is cut into blocks at other
    places; away from the song's edges every stem stays within −30 dB of the unshifted one.
    Without overlap (cut blocks, no cross-fade) the same check fails: the test can tell."""
    rng = np.random.default_rng(5)
    n = 44100 * 24
    # noise whose four bands swell and fade at different rates, so context matters
    t = np.arange(n) / 44100
    envelope = 0.1 + 0.9 * np.abs(np.sin(2 * np.pi * t / 3.1))[:, None]
    audio = (rng.standard_normal((n, 2)) * 0.1 * envelope).astype(np.float32)
    audio += (0.2 * np.sin(2 * np.pi * 80 * t) * np.abs(np.cos(2 * np.pi * t / 2.3)))[:, None].astype(np.float32)
    shift = shift_frames * SIGNAL.hop_length
    padded = np.concatenate([np.zeros((shift, 2), np.float32), audio])
    edge = 44100 * 2

    def change_db(overlap: int) -> list[float]:
        separator = Separator(context_predict, overlap=overlap, stft=Stft(planner_effort="FFTW_ESTIMATE"))
        a = separator.separate(audio)[edge:-edge]
        b = separator.separate(padded)[shift:][edge:-edge]
        return [error_db(b[..., j], a[..., j]) for j in range(4)]

    assert max(change_db(overlap=48)) < -30
    assert max(change_db(overlap=0)) > -30
