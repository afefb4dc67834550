"""Where a model's fixed-size blocks sit on a song's STFT frames, and how they cross-fade.

Blocks of `SIGNAL.n_frames` frames start every `step` frames, so neighbours share `overlap`
frames; there the two blocks' masks are cross-faded with linear ramps that sum to 1, which
hides the block edges (no seams, DESIGN.md §3). The first block has no ramp at its start and
the last none at its end, so every frame of the song carries total weight 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from tuiplayer.config import SIGNAL

DEFAULT_OVERLAP = 48
"""Frames shared by neighbouring blocks (~1.1 s): the cross-fade, and context on both sides."""


@dataclass(frozen=True)
class BlockGrid:
    """The blocks covering a song of n_frames STFT frames.

    block: frames per model block; overlap: frames shared by neighbours (≤ block / 2, so a
    frame is in at most two blocks).
    """

    n_frames: int
    block: int = SIGNAL.n_frames
    overlap: int = DEFAULT_OVERLAP

    def __post_init__(self) -> None:
        if self.n_frames < 1:
            raise ValueError(f"a song has at least one frame. Received: n_frames={self.n_frames}")
        if not 0 <= self.overlap <= self.block // 2:
            raise ValueError(f"overlap must be in [0, block/2]. Received: overlap={self.overlap}, block={self.block}")

    @property
    def step(self) -> int:
        return self.block - self.overlap

    @cached_property
    def starts(self) -> tuple[int, ...]:
        """First frame of each block; the last block may run past the song (zero-padded)."""
        count = max(1, -(-(self.n_frames - self.overlap) // self.step))
        return tuple(i * self.step for i in range(count))

    def __len__(self) -> int:
        return len(self.starts)

    def frames(self, index: int) -> tuple[int, int]:
        """Song frames [first, stop) that block `index` covers (clipped to the song)."""
        start = self.starts[index]
        return start, min(start + self.block, self.n_frames)

    def weights(self, index: int) -> np.ndarray:
        """Cross-fade weights of block `index` over its frames inside the song: (stop-first,) float32."""
        ramp = (np.arange(self.overlap, dtype=np.float32) + 0.5) / self.overlap
        weight = np.ones(self.block, dtype=np.float32)
        if index > 0:
            weight[: self.overlap] = ramp
        if index < len(self) - 1:
            weight[self.block - self.overlap :] = ramp[::-1]
        first, stop = self.frames(index)
        return weight[: stop - first]

    def block_at(self, frame: int) -> int:
        """The block whose middle part holds `frame` (the one to separate first for a playhead)."""
        index = (max(frame, 0) + self.overlap // 2) // self.step
        return min(index, len(self) - 1)
