"""The separation core shared by the player, `separate`, `eval` and `bench`.

For each block of the grid: STFT of its frames → magnitudes of bins 0 … n_bins-1 → model
masks → masks extended to all bins and weighted by the block's cross-fade → masked mixture
spectrograms of the four stems → their share of the stems' audio, added in place. Blocks may
be separated in any order (the player goes playhead first); the stems are complete where all
blocks touching them are done. Because each block's masks sum to 1 and the cross-fade weights
sum to 1, the four stems always add up to the input.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from tuiplayer.config import SIGNAL
from tuiplayer.dsp import masks as mask_ops
from tuiplayer.dsp.stft import Stft, n_frames_for
from tuiplayer.separation.blocks import DEFAULT_OVERLAP, BlockGrid
from tuiplayer.stems import StemBuffers, complete, frame_span

Predict = Callable[[np.ndarray], np.ndarray]
"""A model: magnitudes (batch, n_frames, n_bins, channels) → masks (batch, n_frames, n_bins, channels, n_stems)."""


class SongSeparation:
    """One song being separated: its audio, block grid, and the stems filled in so far.

    audio: (n_samples, 2) float32 at SIGNAL.sample_rate.
    stored: (n_samples, 2, n_stems - 1) float16, the sum of the done blocks' shares of every
    stem but "other", which is the mixture minus the rest (tuiplayer.stems); 3/4 of the
    inverse STFTs. `stems` gives all four as float32.
    done: (n_blocks,) bool, which blocks have been added.
    frames_ready: (n_frames,) bool, frames whose every covering block is done; audio is final
    where all frames overlapping it are (`ready`). A block only ever writes samples that are
    not ready yet, so a reader of ready samples never races with the writer.
    """

    def __init__(self, audio: np.ndarray, stft: Stft, n_stems: int, overlap: int = DEFAULT_OVERLAP,
                 buffers: StemBuffers | None = None) -> None:
        """buffers: empty StemBuffers to fill (in the player: shared memory, tuiplayer.stems);
        new private ones when None."""
        self.audio = np.ascontiguousarray(audio, dtype=np.float32)
        self.stft = stft
        self.n_stems = n_stems
        self.grid = BlockGrid(n_frames_for(len(audio)), overlap=overlap)
        buffers = buffers or StemBuffers.zeros(len(audio), audio.shape[1])
        if buffers.stored.shape != (len(audio), audio.shape[1], n_stems - 1) \
                or buffers.frames_ready.shape != (self.grid.n_frames,):
            raise ValueError(f"buffers {buffers.stored.shape}, {buffers.frames_ready.shape} do not fit the song")
        self.buffers = buffers
        self.stored, self.frames_ready = buffers.stored, buffers.frames_ready
        self.done = np.zeros(len(self.grid), dtype=bool)
        # blocks covering each frame, and how many of them are done: (n_frames,) each
        self._covering = np.zeros(self.grid.n_frames, dtype=np.int8)
        for index in range(len(self.grid)):
            first, stop = self.grid.frames(index)
            self._covering[first:stop] += 1
        self._added = np.zeros(self.grid.n_frames, dtype=np.int8)
        self._adding = threading.Lock()

    def model_input(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Block `index`: its mixture STFT (frames, n_freqs, 2) and the model's input (n_frames, n_bins, 2).

        The model input is zero-padded to a whole block where the song ends.
        """
        first, stop = self.grid.frames(index)
        spec = self.stft.forward(self.audio, first_frame=first, n_frames=stop - first)
        magnitude = np.zeros((self.grid.block, SIGNAL.n_bins, spec.shape[2]), dtype=np.float32)
        magnitude[: stop - first] = np.abs(spec[:, : SIGNAL.n_bins])
        return spec, magnitude

    def add_block(self, index: int, spec: np.ndarray, masks: np.ndarray) -> None:
        """Add block `index`'s share of the stems, from its STFT and the model's masks.

        spec: (frames, n_freqs, channels) from model_input; masks: (n_frames, n_bins, channels,
        n_stems), non-negative (normalised here); frames past the song's end are ignored.
        """
        if self.done[index]:
            return
        first, stop = self.grid.frames(index)
        count = stop - first
        stem_specs = mask_ops.weighted_stem_spectrograms(spec, masks[:count], self.grid.weights(index),
                                                         self.n_stems - 1)
        # the stored stems as extra channels, one inverse: (frames, n_freqs, channels · (n_stems - 1))
        stem_specs = stem_specs.reshape(count, spec.shape[1], -1)
        flat = self.stored.reshape(len(self.stored), -1)
        with self._adding:  # neighbouring blocks add into the same samples
            if self.done[index]:
                return
            self.stft.inverse(stem_specs, len(self.audio), flat, first_frame=first, accumulate=True)
            self._added[first:stop] += 1
            self.frames_ready[first:stop] = self._added[first:stop] == self._covering[first:stop]
            self.done[index] = True

    @property
    def stems(self) -> np.ndarray:
        """All stems (n_samples, 2, n_stems) float32 (a new array); final where `ready`."""
        return complete(self.audio, self.stored)

    def fill(self, stems: np.ndarray) -> None:
        """Take finished stems (n_samples, 2, n_stems), or the stored ones without other (e.g.
        from the cache): every block done."""
        self.buffers.fill(stems)
        self._added[...] = self._covering
        self.done[...] = True

    def ready(self, start: int, stop: int) -> bool:
        """Whether the stems of samples [start, stop) are final."""
        return self.buffers.ready(start, stop)

    def block_at_sample(self, sample: int) -> int:
        """The block to separate first for a playhead at `sample`."""
        return self.grid.block_at(sample // self.stft.config.hop_length)

    def blocks_needed(self, sample: int) -> tuple[int, ...]:
        """Every block whose frames shape the audio at `sample` (one, or two in a cross-fade)."""
        lo, hi = frame_span(sample, sample + 1, self.grid.n_frames)
        return tuple(i for i in range(len(self.grid))
                     if self.grid.frames(i)[0] < hi and self.grid.frames(i)[1] > lo)

    @property
    def complete(self) -> bool:
        return bool(self.done.all())


class Separator:
    """Separates whole songs with a model, in batches of blocks.

    predict: the model (see `Predict`); batch_size: blocks per model call.
    """

    def __init__(
        self,
        predict: Predict,
        *,
        n_stems: int = 4,
        batch_size: int = 8,
        overlap: int = DEFAULT_OVERLAP,
        stft: Stft | None = None,
    ) -> None:
        self.predict = predict
        self.n_stems = n_stems
        self.batch_size = batch_size
        self.overlap = overlap
        self.stft = stft or Stft()

    def start(self, audio: np.ndarray) -> SongSeparation:
        """A song ready to be separated block by block."""
        return SongSeparation(audio, self.stft, self.n_stems, self.overlap)

    def run_blocks(self, song: SongSeparation, indices: Sequence[int]) -> None:
        """Separate the given blocks of `song` in one model call and add them."""
        inputs = [song.model_input(i) for i in indices]
        masks = self.predict(np.stack([magnitude for _, magnitude in inputs]))
        for index, (spec, _), block_masks in zip(indices, inputs, masks, strict=True):
            song.add_block(index, spec, block_masks)

    def separate(
        self,
        audio: np.ndarray,
        progress: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """audio (n_samples, 2) → stems (n_samples, 2, n_stems); they sum to the input.

        progress(done_blocks, total_blocks) is called after each model call.
        """
        song = self.start(audio)
        total = len(song.grid)
        for batch in _batches(range(total), self.batch_size):
            self.run_blocks(song, batch)
            if progress is not None:
                progress(int(song.done.sum()), total)
        return song.stems


def _batches(items: Iterable[int], size: int) -> Iterable[list[int]]:
    batch: list[int] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
