"""Running a shipped model as the player does: in stages, through a step the worker controls."""

from __future__ import annotations

import contextlib
import warnings

import numpy as np

from tuiplayer import modelstore
from tuiplayer.config import SIGNAL
from tuiplayer.nn import runtime


def test_the_player_s_staged_calls_give_the_whole_model_s_masks() -> None:
    card = modelstore.resolve("unet")
    whole, staged = runtime.load(card), runtime.load_for_player(card)
    assert len(whole.stages) == 1 and len(staged.stages) == runtime.PLAYER_STAGES
    x = np.random.default_rng(0).exponential(1.0, (2, SIGNAL.n_frames, SIGNAL.n_bins, SIGNAL.channels))
    steps = []

    @contextlib.contextmanager
    def step():
        steps.append(len(steps))
        yield

    expected = whole(x)
    assert expected.shape == (2, SIGNAL.n_frames, SIGNAL.n_bins, SIGNAL.channels, 4)
    first = staged.call_in_stages(x, step)  # eager: the whole model, one step
    assert steps == [0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):  # traced: one step per stage
            np.testing.assert_allclose(staged.call_in_stages(x, step), expected, atol=1e-5)
        np.testing.assert_allclose(whole(x), expected, atol=1e-5)  # (traced, one graph)
    assert not [w for w in caught if "structure" in str(w.message)]  # each graph gets inputs as it expects
    assert len(steps) == 1 + 2 * runtime.PLAYER_STAGES
    np.testing.assert_allclose(first, expected, atol=1e-5)
