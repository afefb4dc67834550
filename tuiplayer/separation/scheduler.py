"""Which blocks to separate next: the playhead's block first, then ahead of it, then behind.

Pure bookkeeping, no threads: the worker asks `next_batch` between model calls, so a seek
(`move_to`) re-prioritises at once — the very next call serves the new playhead. Right after
a seek the batch holds just the blocks the playhead's audio needs (stems there as soon as
possible); after that, batches of `batch_size`.
"""

from __future__ import annotations

import numpy as np


class BlockScheduler:
    """Orders the blocks of one song for one model. done: the song's (n_blocks,) bool array."""

    def __init__(self, n_blocks: int, batch_size: int = 8) -> None:
        if n_blocks < 1 or batch_size < 1:
            raise ValueError(f"need blocks and a batch size. Received: n_blocks={n_blocks}, batch_size={batch_size}")
        self.n_blocks = n_blocks
        self.batch_size = batch_size
        self.playhead_block = 0
        self.urgent: tuple[int, ...] = (0,)
        self._fresh = True

    def move_to(self, block: int, urgent: tuple[int, ...] | None = None) -> None:
        """The playhead is now in `block` (a seek, or playback moving on).

        urgent: every block the playhead's audio needs (one, or two where it lies in the
        cross-fade of neighbours); they make up the first batch. Default: `block` alone.
        """
        block = min(max(block, 0), self.n_blocks - 1)
        urgent = tuple(urgent) if urgent else (block,)
        if block != self.playhead_block or urgent != self.urgent:
            self._fresh = True
        self.playhead_block, self.urgent = block, urgent

    def order(self) -> list[int]:
        """Every block, most urgent first: playhead, ahead of it in order, then behind it backwards."""
        ahead = range(self.playhead_block, self.n_blocks)
        behind = range(self.playhead_block - 1, -1, -1)
        return [*ahead, *behind]

    def next_batch(self, done: np.ndarray) -> list[int]:
        """The blocks to separate next (empty when every block is done)."""
        if self._fresh:
            self._fresh = False
            batch = [index for index in self.urgent if not done[index]]
            if batch:
                return batch
        return [index for index in self.order() if not done[index]][: self.batch_size]
