"""Which blocks to separate next: the playhead's block first, then ahead of it, then behind.

Pure bookkeeping, no threads: the worker asks `next_batch` between model calls, so a seek
(`move_to`) re-prioritises at once — the very next call serves the new playhead. Right after
a seek the batch holds one block (stems at the playhead as soon as possible); after that,
batches of `batch_size` (throughput: batch 8 is faster per block than batch 1).
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
        self._fresh = True

    def move_to(self, block: int) -> None:
        """The playhead is now in `block` (a seek, or playback moving on)."""
        block = min(max(block, 0), self.n_blocks - 1)
        if block != self.playhead_block:
            self._fresh = True
        self.playhead_block = block

    def order(self) -> list[int]:
        """Every block, most urgent first: playhead, ahead of it in order, then behind it backwards."""
        ahead = range(self.playhead_block, self.n_blocks)
        behind = range(self.playhead_block - 1, -1, -1)
        return [*ahead, *behind]

    def next_batch(self, done: np.ndarray) -> list[int]:
        """The blocks to separate next (empty when every block is done)."""
        size = 1 if self._fresh else self.batch_size
        batch = [index for index in self.order() if not done[index]][:size]
        self._fresh = False
        return batch
