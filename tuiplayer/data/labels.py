"""What an example says it knows about its stems (issue 17: partial labels).

An example is the sum of len(STEMS) *parts* (`tuiplayer.data.examples`); its labels say, per
part ("slot"), which stems the part is the sum of, and whether the part is exactly that sum or
only a lower bound of it: a (len(STEMS), len(STEMS) + 1) float32 table, membership then the
bound flag. `tuiplayer.nn.models.losses.GroupedL1` turns it into the loss. No Keras here: the
examples are made without it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tuiplayer.config import STEMS

FULL_LABELS = np.concatenate([np.eye(len(STEMS), dtype=np.float32), np.zeros((len(STEMS), 1), np.float32)], 1)
"""Every stem known (a multitrack song): part k is stem k, exact."""


def labels(*slots: tuple[Sequence[str], bool]) -> np.ndarray:
    """An example's labels from its parts, in order: (the stems whose sum part k is, whether it
    is only a lower bound of that sum). Parts not given are not judged (zero rows).

    labels((["vocals"], False), (["drums", "bass", "other"], False)): the vocals and the sum of
    the rest are known (a real instrumental under a generated voice); labels((["other"], True)):
    the "other" stem holds at least the part (a real guitar track inside a whole song)."""
    table = np.zeros((len(STEMS), len(STEMS) + 1), dtype=np.float32)
    for k, (stems, bound) in enumerate(slots):
        for stem in stems:
            table[k, STEMS.index(stem)] = 1.0
        table[k, -1] = float(bound)
    return table
