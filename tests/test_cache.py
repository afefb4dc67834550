"""The stem cache: round trip with exact unity remix, corruption, LRU limit, write failures."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import numpy as np
import pytest

from tuiplayer.separation import cache as cache_module
from tuiplayer.separation.cache import StemCache, content_hash
from tuiplayer.stems import complete as complete_stems


def stems_of(seed: int, n: int = 44100) -> tuple[np.ndarray, np.ndarray]:
    stems = np.random.default_rng(seed).uniform(-0.3, 0.3, (n, 2, 4)).astype(np.float32)
    return stems.sum(axis=-1), stems


def test_round_trip_keeps_the_unity_remix(tmp_path: Path) -> None:
    audio, stems = stems_of(0)
    store = StemCache(tmp_path)
    key = content_hash(audio)
    assert store.load(audio, key, "ab" * 32) is None
    assert store.store(stems, key, "ab" * 32) is None
    stored = store.load(audio, key, "ab" * 32)
    assert stored is not None and stored.dtype == np.float16
    back = complete_stems(audio, stored)
    assert back.shape == stems.shape
    np.testing.assert_allclose(back[..., :3], stems[..., :3], atol=2e-4)  # float16 storage
    assert np.max(np.abs(back.sum(axis=-1) - audio)) < 1e-6  # other = mixture − the rest
    assert store.load(audio, key, "cd" * 32) is None  # another model's stems are another entry


def test_content_hash_follows_the_samples() -> None:
    audio, _ = stems_of(1)
    assert content_hash(audio) == content_hash(audio.copy())
    changed = audio.copy()
    changed[100, 0] += 1e-3
    assert content_hash(changed) != content_hash(audio)


@pytest.mark.parametrize("damage", ["flip", "truncate", "no description"])
def test_damaged_entries_are_ignored_and_removed(tmp_path: Path, damage: str) -> None:
    audio, stems = stems_of(2)
    store = StemCache(tmp_path)
    key = content_hash(audio)
    store.store(stems, key, "ab" * 32)
    (data,) = (tmp_path / "stems").glob("*.npy")
    raw = bytearray(data.read_bytes())
    if damage == "flip":
        raw[-100] ^= 0xFF
        data.write_bytes(bytes(raw))
    elif damage == "truncate":
        data.write_bytes(bytes(raw[: len(raw) // 2]))
    else:
        data.with_suffix(".json").unlink()
    assert store.load(audio, key, "ab" * 32) is None
    assert not list((tmp_path / "stems").iterdir())
    assert store.store(stems, key, "ab" * 32) is None  # rebuilt
    assert store.load(audio, key, "ab" * 32) is not None


def test_least_recently_used_entries_make_room(tmp_path: Path) -> None:
    songs = [stems_of(seed, n=20_000) for seed in range(4)]
    entry_mb = 20_000 * 2 * 3 * 2 / 2**20
    store = StemCache(tmp_path, limit_mb=3.5 * entry_mb)
    keys = [content_hash(audio) for audio, _ in songs]
    for (_audio, stems), key in zip(songs[:3], keys, strict=False):
        store.store(stems, key, "ab" * 32)
        time.sleep(0.01)
    assert store.load(songs[0][0], keys[0], "ab" * 32) is not None  # song 0 used again
    store.store(songs[3][1], keys[3], "ab" * 32)
    assert store.load(songs[1][0], keys[1], "ab" * 32) is None  # the least recently used went
    for i in (0, 2, 3):
        assert store.load(songs[i][0], keys[i], "ab" * 32) is not None


def test_an_unwritable_cache_folder_is_a_message_not_an_error(tmp_path: Path) -> None:
    audio, stems = stems_of(3)
    blocker = tmp_path / "not a folder"
    blocker.write_text("a file where the cache folder should be")
    message = StemCache(blocker).store(stems, content_hash(audio), "ab" * 32)
    assert message is not None and message.startswith("stems not cached in")


def test_a_full_disk_is_a_message_and_leaves_no_debris(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    audio, stems = stems_of(4)

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(cache_module, "atomic_write", full)
    message = StemCache(tmp_path).store(stems, content_hash(audio), "ab" * 32)
    assert message is not None and "No space left on device" in message
    assert not list((tmp_path / "stems").iterdir())
