"""The stems contract the three processes share (tuiplayer.stems), on its own."""

from __future__ import annotations

import multiprocessing

import numpy as np
import pytest

from tuiplayer import stems
from tuiplayer.config import SIGNAL
from tuiplayer.stems import STORED_STEMS, StemBuffers

HOP, HALF = SIGNAL.hop_length, SIGNAL.n_fft // 2


def _write_in_child(connection) -> None:
    _, song = stems.receive_song(connection)
    song.stems[0].stored[:, :, 0] = song.audio  # the vocals: the song itself
    song.stems[0].frames_ready[...] = True
    connection.send(float(song.audio.sum()))


def test_a_song_handed_to_a_running_process_is_shared_both_ways() -> None:
    """A SharedSong made after the fork reaches the child through its pipe: the child reads the
    audio and writes stems that this process sees."""
    context = multiprocessing.get_context("fork")
    parent, child_end = context.Pipe()
    child = context.Process(target=_write_in_child, args=(child_end,))
    child.start()
    try:
        audio = np.random.default_rng(0).uniform(-0.5, 0.5, (10 * HOP, 2)).astype(np.float32)
        song = stems.SharedSong.create(3, audio, 2)
        buffers = song.stems[0]
        assert buffers.stored.shape == (10 * HOP, 2, STORED_STEMS) and buffers.stored.dtype == np.float16
        assert buffers.frames_ready.shape == (11,) and not buffers.frames_ready.any()
        stems.send_song(parent, ("add", 3), song)
        assert parent.poll(10) and parent.recv() == pytest.approx(float(audio.sum()), rel=1e-5)
        assert buffers.complete and not song.stems[1].complete
        np.testing.assert_allclose(buffers.stored[:, :, 0], audio, atol=1e-3)
        song.close()
    finally:
        child.join(10)
    assert child.exitcode == 0


def test_samples_are_ready_where_every_frame_over_them_is() -> None:
    buffers = StemBuffers.zeros(40 * HOP)
    buffers.frames_ready[:10] = True
    # frame t covers samples [t·hop − n_fft/2, t·hop + n_fft/2): sample s needs frames up to (s + half − 1) // hop
    last_ready = 10 * HOP - HALF  # the first sample frame 10 reaches
    assert buffers.ready(0, last_ready) and not buffers.ready(0, last_ready + 1)
    assert buffers.ready_until(0) == last_ready and buffers.ready_until(5 * HOP) == last_ready
    assert buffers.ready_until(30 * HOP) == 30 * HOP  # nothing ready there: it ends where it starts
    assert not buffers.complete
    buffers.frames_ready[:] = True
    assert buffers.complete and buffers.ready_until(123) == buffers.n_samples


def test_other_is_the_mixture_minus_the_rest_so_the_four_sum_to_the_song() -> None:
    rng = np.random.default_rng(0)
    audio = rng.uniform(-0.5, 0.5, (5000, 2)).astype(np.float32)
    stored = (0.3 * rng.standard_normal((5000, 2, STORED_STEMS))).astype(np.float16)
    every = stems.complete(audio, stored)
    assert every.shape == (5000, 2, STORED_STEMS + 1) and every.dtype == np.float32
    np.testing.assert_allclose(every.sum(axis=-1), audio, atol=1e-6)
    for j in range(STORED_STEMS + 1):
        np.testing.assert_allclose(stems.stem(audio, stored, j), every[..., j], atol=1e-6)
    buffers = StemBuffers.zeros(5000)
    buffers.fill(every)  # the fourth is not kept: it follows from the rest
    np.testing.assert_array_equal(buffers.stored, stored)
    assert buffers.complete
