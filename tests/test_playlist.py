"""Many songs from files, folders and .m3u playlists (tuiplayer.playlist)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuiplayer.errors import BadInput
from tuiplayer.playlist import expand


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_folders_are_read_recursively_in_natural_order_audio_only(tmp_path: Path):
    for name in ("Track 10.flac", "track 2.mp3", "cover.jpg", "disc 2/01 a.wav", "notes.txt", "Track 1.FLAC"):
        touch(tmp_path / "album" / name)
    songs = expand([tmp_path / "album"])
    assert [p.relative_to(tmp_path / "album").as_posix() for p in songs.paths] == [
        "disc 2/01 a.wav", "Track 1.FLAC", "track 2.mp3", "Track 10.flac"]
    assert songs.notices == []


def test_a_playlist_resolves_relative_entries_and_skips_what_is_missing(tmp_path: Path):
    a = touch(tmp_path / "music" / "a.flac")
    b = touch(tmp_path / "elsewhere" / "b b.wav")
    playlist = tmp_path / "lists" / "set.m3u8"
    playlist.parent.mkdir()
    playlist.write_text("\ufeff#EXTM3U\n#EXTINF:123,A\n../music/a.flac\n\nmissing.flac\n"
                        f"file://{str(b).replace(' ', '%20')}\nhttp://radio.example/stream\n../music\n",
                        encoding="utf-8")
    songs = expand([playlist])
    assert songs.paths == [a, b, a]
    assert len(songs.notices) == 2
    assert "skipped missing.flac (not found)" in songs.notices[0] and "a stream" in songs.notices[1]


def test_files_folders_and_playlists_mix_in_order(tmp_path: Path):
    first = touch(tmp_path / "one.wav")
    folder_song = touch(tmp_path / "f" / "x.ogg")
    playlist = tmp_path / "p.m3u"
    playlist.write_text(f"{first}\np.m3u\n")  # (it includes itself: read once)
    songs = expand([first, tmp_path / "f", playlist])
    assert songs.paths == [first, folder_song, first]
    assert any("includes itself" in notice for notice in songs.notices)


def test_nothing_to_play_is_one_line(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInput, match="no audio files in this folder"):
        expand([tmp_path / "empty"])
    playlist = tmp_path / "gone.m3u"
    playlist.write_text("nope.flac\n")
    with pytest.raises(BadInput, match="no songs to play"):
        expand([playlist])


def test_separate_takes_playlists_too(tmp_path: Path, write_wav):
    from conftest import run_cli

    song = write_wav("song.wav", seconds=1.0)
    playlist = tmp_path / "list.m3u"
    playlist.write_text("song.wav\nmissing.wav\n")
    result = run_cli("separate", playlist, "-o", tmp_path / "out", "--model", "unet")
    assert result.returncode == 0, result.stderr
    assert "skipped missing.wav (not found)" in result.stderr
    assert (tmp_path / "out" / song.stem / "vocals.wav").is_file()
