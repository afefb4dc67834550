"""The player's screen and keys, driven by Textual's Pilot (no sound: the silent clock)."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import time
from pathlib import Path

import numpy as np
import pytest

from tuiplayer import modelstore
from tuiplayer.audio.io import Audio, AudioInfo
from tuiplayer.config import SIGNAL, STEMS
from tuiplayer.playback import stretch
from tuiplayer.playback.control import SilentClock
from tuiplayer.playback.process import AudioProcess
from tuiplayer.player.app import PlayerApp
from tuiplayer.player.app import make_app as player_app
from tuiplayer.player.core import GAIN_STEP_DB

SECONDS = 20


def band_predict(magnitude: np.ndarray) -> np.ndarray:
    """A stand-in model, instant and deterministic: stem j takes a quarter of the bins."""
    masks = np.full((*magnitude.shape, 4), 0.01, dtype=np.float32)
    for j, band in enumerate(np.array_split(np.arange(SIGNAL.n_bins), 4)):
        masks[:, :, band, :, j] = 1.0
    return masks


def make_audio(warnings: tuple[str, ...] = (), path: Path = Path("song.flac")) -> Audio:
    """A 20-s song of four tones (the lowest one set by the file's name: songs differ)."""
    n = SECONDS * SIGNAL.sample_rate
    t = np.arange(n) / SIGNAL.sample_rate
    low = {"a.flac": 130, "c.flac": 150}.get(path.name, 110)
    tone = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (low, 1500, 4000, 9000))
    samples = np.repeat(tone[:, None], 2, axis=1).astype(np.float32)
    info = AudioInfo(path=path, format="FLAC (PCM_16)", sample_rate=SIGNAL.sample_rate,
                     channels=2, n_samples=n, decoder="libsndfile", warnings=warnings)
    return Audio(samples=samples, source=info)


def make_app(tmp_path: Path, *, ab: bool = True, fail: bool = False, warnings: tuple[str, ...] = (),
             device: str | None = None, block_s: float = 0.0, model: str = "unet",
             songs: tuple[str, ...] = ("song.flac",), index: int = 0) -> PlayerApp:
    """The player on 20-s songs (tmp_path / each of songs, from songs[index] on) with a stand-in
    model (block_s: how long it takes a block) under the card of the installed `model`."""
    from tuiplayer.player.app import SongQueue

    card = modelstore.resolve(model)
    cards = [card, card] if ab else [card]

    def load(_card: modelstore.ModelCard):
        if fail:
            raise RuntimeError("weights unreadable")
        return lambda magnitude: (time.sleep(block_s), band_predict(magnitude))[1]

    queue = SongQueue([tmp_path / name for name in songs], index=index)
    return player_app(queue, cards, load, loader=lambda path: make_audio(warnings, path), sound=device is not None,
                      device=device)


async def until(pilot, condition, timeout: float = 30.0) -> None:
    """Waits for `condition()`; the deadline is generous (a loaded CI machine spawns processes
    slowly) since a passing test returns as soon as the condition holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s")
        await pilot.pause(0.05)


async def separated(app: PlayerApp, pilot) -> None:
    await until(pilot, lambda: all(state.status == "done" for state in app.player.models))
    await pilot.pause()


async def test_transport_keys(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        player = app.player
        await pilot.press("space")
        assert not player.playing and not player.transport.snapshot.playing
        start = player.position_s
        await pilot.press("right")
        assert player.position_s == pytest.approx(start + 5.0, abs=0.05)
        await pilot.press("left")
        assert player.position_s == pytest.approx(start, abs=0.05)
        await pilot.press("full_stop")  # 60 s: clamped to the song's end
        assert player.position_s == pytest.approx(SECONDS, abs=0.1)
        await pilot.press("comma")
        assert player.position_s == pytest.approx(0.0, abs=0.1)
        await pilot.press("shift+right")
        assert player.position_s == pytest.approx(SECONDS, abs=0.1)
        await pilot.press("shift+left")
        assert player.position_s == pytest.approx(0.0, abs=0.1)
        await pilot.press("space")
        assert player.playing
        await asyncio.sleep(0.5)
        assert 0.2 < player.position_s < 1.5  # the silent clock runs in real time


async def test_mix_keys(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        player = app.player
        for key, stem in zip("1234", range(4), strict=True):
            await pilot.press(key)
            assert player.muted[stem]
        assert player.effective_gains() == (0.0, 0.0, 0.0, 0.0)
        await pilot.press("0")
        assert not any(player.muted) and player.effective_gains() == (1.0,) * 4
        for key, stem in zip(["exclamation_mark", "at", "number_sign", "dollar_sign"], range(4), strict=True):
            await pilot.press(key)
            assert player.soloed[stem]
            await pilot.press(key)
        await pilot.press("at")  # solo drums
        assert player.transport.snapshot.gains == (0.0, 1.0, 0.0, 0.0)
        await pilot.press("0")
        assert player.selected == 0
        await pilot.press("down", "down")
        assert player.selected == 2
        await pilot.press("up")
        assert player.selected == 1
        await pilot.press("plus")
        assert player.gains_db[1] == GAIN_STEP_DB
        await pilot.press("minus", "minus", "minus")
        assert player.gains_db[1] == -2 * GAIN_STEP_DB
        assert player.transport.snapshot.gains[1] == pytest.approx(10 ** (-2 * GAIN_STEP_DB / 20))
        strip = app.query_one("#strip-drums")
        await pilot.pause(0.2)
        assert strip.selected and strip.gain_db == -2 * GAIN_STEP_DB  # the screen follows
        await pilot.press("0")
        assert player.gains_db == [0.0] * 4


async def test_ab_switch_keeps_the_playhead(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await separated(app, pilot)
        player = app.player
        await pilot.press("space", "right")
        position = player.position
        await pilot.press("a")
        assert player.active == 1 and player.transport.snapshot.model == 1
        assert player.position == position
        await pilot.press("a")
        assert player.active == 0


async def test_ab_without_a_partner_is_a_notice(tmp_path: Path) -> None:
    app = make_app(tmp_path, ab=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("a")
        assert app.player.active == 0
        assert any("no A/B partner" in n.message for n in app._notifications)


async def test_loop_key_sets_start_end_and_clears(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        player = app.player
        await pilot.press("space")
        player.seek_to(5.0)
        await pilot.press("l")
        assert player.loop_start == 5 * SIGNAL.sample_rate and player.loop is None
        await pilot.press("right", "l")
        assert player.loop == (5 * SIGNAL.sample_rate, 10 * SIGNAL.sample_rate)
        assert player.transport.snapshot.loop == player.loop
        await pilot.press("l")
        assert player.loop is None and player.transport.snapshot.loop is None


async def test_help_view_and_quit(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("question_mark")
        assert app.screen.__class__.__name__ == "HelpScreen"
        hint = app.screen.query_one(".hint").render()
        assert '[keys] id = "key"' in getattr(hint, "plain", str(hint))  # shown as written, not as markup
        await pilot.press("escape")
        assert app.screen.__class__.__name__ == "Screen"
        await pilot.press("v")
        assert app.view_stem
        await pilot.press("q")
    assert app.return_code == 0


async def test_export_writes_the_remix_and_stems_and_asks_before_overwriting(tmp_path: Path) -> None:
    import soundfile

    app = make_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await separated(app, pilot)
        await pilot.press("1")  # mute vocals: the remix is without them
        await pilot.press("e")
        assert app.screen.__class__.__name__ == "ExportScreen"
        await pilot.click("#wav")
        await app.workers.wait_for_complete()
        folder = tmp_path / "song"
        written = {p.name for p in folder.iterdir()}
        assert written == {"remix.wav", *(f"{stem}.wav" for stem in STEMS), "song.stem.mp4"}
        remix, rate = soundfile.read(folder / "remix.wav", dtype="float32")
        stems = {stem: soundfile.read(folder / f"{stem}.wav", dtype="float32")[0] for stem in STEMS}
        assert rate == SIGNAL.sample_rate and len(remix) == SECONDS * SIGNAL.sample_rate
        np.testing.assert_allclose(remix, stems["drums"] + stems["bass"] + stems["other"], atol=1e-3)
        before = (folder / "remix.wav").stat().st_mtime_ns
        await pilot.press("e")
        await pilot.click("#wav")
        assert app.screen.__class__.__name__ == "ConfirmScreen"
        await pilot.press("n")
        await app.workers.wait_for_complete()
        assert (folder / "remix.wav").stat().st_mtime_ns == before  # nothing overwritten


@pytest.mark.skipif(not stretch.available(), reason="tempo and pitch need pylibrb (the stretch extra)")
async def test_export_at_a_tempo_and_pitch_says_so_in_the_remix_name(tmp_path: Path) -> None:
    import soundfile

    app = make_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await separated(app, pilot)
        await pilot.press("left_square_bracket", "left_square_bracket", "right_curly_bracket")
        assert (app.player.tempo, app.player.semitones) == (0.9, 1)
        await pilot.press("e")
        await pilot.click("#wav")
        await app.workers.wait_for_complete()
        folder = tmp_path / "song"
        remix, rate = soundfile.read(folder / "remix-tempo90-pitch+1.wav", dtype="float32")
        assert rate == SIGNAL.sample_rate and len(remix) == pytest.approx(SECONDS * SIGNAL.sample_rate / 0.9, abs=2)
        vocals, _ = soundfile.read(folder / "vocals.wav", dtype="float32")
        assert len(vocals) == SECONDS * SIGNAL.sample_rate  # the stems at the song's own tempo


async def test_export_before_separation_is_a_notice(tmp_path: Path) -> None:
    app = make_app(tmp_path, fail=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.5)
        await pilot.press("e")
        assert app.screen.__class__.__name__ == "Screen"
        assert any("cannot export yet" in n.message for n in app._notifications)


async def test_a_model_that_fails_is_a_notice_and_the_mix_plays(tmp_path: Path) -> None:
    app = make_app(tmp_path, fail=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.player.models[0].status == "failed")
        await pilot.pause(0.2)
        assert app.player.models[0].status == "failed"
        assert any("weights unreadable" in n.message for n in app._notifications)
        assert app.player.playing and not app.player.separated()


async def test_a_model_slower_than_the_song_says_so(tmp_path: Path) -> None:
    """A model that cannot keep ahead of the playhead (3.5 s a block of 3.3 s of song): a notice
    with its measured speed, and the models line says it while it separates."""
    app = make_app(tmp_path, ab=False, block_s=3.5)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.player.falls_behind(0), timeout=40.0)
        await pilot.pause(0.3)
        speed = app.player.models[0].speed
        assert speed is not None and 0.8 < speed < 1.0
        said = [n.message for n in app._notifications if "cannot keep ahead" in n.message]
        assert len(said) == 1 and f"{speed:.1f}× as fast as the song plays" in said[0]
        assert f"{speed:.1f}× real time" in app._models_line()


async def test_a_separation_process_that_dies_is_a_notice_and_the_mix_plays_on(tmp_path: Path) -> None:
    import os
    import signal

    app = make_app(tmp_path, block_s=0.3)
    async with app.run_test(size=(100, 30)) as pilot:
        player = app.player
        await until(pilot, lambda: bool(player.models[0].done))
        assert player.models[0].done and app.session.separation is not None
        os.kill(app.session.separation.pid, signal.SIGKILL)  # type: ignore[arg-type]
        await until(pilot, lambda: all(state.status == "failed" for state in player.models))
        notices = [n.message for n in app._notifications]
        assert any("separation process stopped (signal 9)" in n and "original mix" in n for n in notices)
        assert all(state.status == "failed" for state in player.models)
        assert "failed" in str(app.query_one("#models").render())
        before = player.position
        await pilot.pause(0.3)
        assert player.playing and player.position > before  # the song plays on
        await pilot.press("1")
        assert player.muted[0]  # and the keys still work


async def test_a_tiny_terminal_shows_a_notice(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        assert app.has_class("-too-small")
        assert app.query_one("#too-small").display and not app.query_one("#main").display
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert not app.has_class("-too-small") and app.query_one("#main").display


async def test_keys_remap_from_the_config(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    app.keymap = {"play": "p", "mute_vocals": "m"}
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("p")
        assert not app.player.playing
        await pilot.press("m")
        assert app.player.muted[0]
        await pilot.press("space")  # no longer bound
        assert not app.player.playing


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_main_screen_snapshot(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:
    """The main screen, paused at 7.5 s with drums muted and bass 1.5 dB up."""
    app = make_app(tmp_path)

    async def run_before(pilot) -> None:
        await separated(app, pilot)
        await pilot.press("space")
        app.player.seek_to(7.5)
        await pilot.press("2", "down", "down", "plus")
        await pilot.pause(0.3)
        app.clear_notifications()
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


async def test_no_sound_device_is_a_notice_and_a_silent_clock(tmp_path: Path) -> None:
    app = make_app(tmp_path, device="no such card")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.3)
        assert isinstance(app.player.transport.output, SilentClock)
        assert any("no sound output device 'no such card'" in n.message and "silently" in n.message
                   for n in app._notifications)
        assert app.player.position_s > 0  # the clock runs


async def test_a_damaged_file_plays_what_decoded_with_a_notice(tmp_path: Path) -> None:
    app = make_app(tmp_path, warnings=("song.flac: damaged after 0:20; playing what decoded",))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.2)
        assert any("damaged" in n.message for n in app._notifications)


def test_a_sound_output_that_stops_becomes_a_notice_and_a_silent_clock(tmp_path: Path) -> None:
    """The sound process gone: the player carries on silently from the
    same playhead, with one notice."""
    app = make_app(tmp_path)
    player, transport = app.player, app.session.transport
    transport.output.close()  # type: ignore[union-attr]  (the silent clock the test app has)
    transport.output = stopped_sound_process(transport.control)
    transport.seek(5 * SIGNAL.sample_rate)
    try:
        notice = transport.check()
        assert notice is not None and "sound stopped" in notice
        assert isinstance(transport.output, SilentClock)
        time.sleep(0.3)
        assert 5 * SIGNAL.sample_rate < player.position < 6 * SIGNAL.sample_rate  # on from the same place
        assert transport.check() is None  # said once
    finally:
        app.session.close()


def stopped_sound_process(control: np.ndarray) -> AudioProcess:
    """An AudioProcess whose child has died (made without forking one)."""
    process = AudioProcess.__new__(AudioProcess)

    class Dead:
        def is_alive(self) -> bool:
            return False

        def join(self, timeout: float | None = None) -> None:
            pass

    process._control = control
    process._moved = (-1.0, time.monotonic())
    process._process = Dead()  # type: ignore[assignment]
    process._connection, _ = multiprocessing.Pipe()
    return process


async def test_export_to_a_place_that_cannot_be_written_is_a_notice(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    async with app.run_test(size=(100, 30)) as pilot:
        await separated(app, pilot)
        for folder, says in ((tmp_path / ("f" * 300), "file name too long"),
                             (blocker / "sub", "is a file, not a folder")):
            await pilot.press("e")
            app.screen.query_one("#folder").value = str(folder)
            await pilot.click("#wav")
            await app.workers.wait_for_complete()
            assert app.is_running and app.screen.__class__.__name__ == "Screen"
            assert any(says in n.message for n in app._notifications), [n.message for n in app._notifications]


async def test_a_model_that_leaves_stems_in_other_says_so(tmp_path: Path) -> None:
    app = make_app(tmp_path, ab=False, model="spleeter-2stems")
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        line = app.query_one("#models").render()
        assert "drums, bass in other" in getattr(line, "plain", str(line))


async def test_a_song_opened_again_comes_back_as_it_was_left(tmp_path: Path) -> None:
    from tuiplayer.player import recall

    app = make_app(tmp_path, ab=False)
    async with app.run_test(size=(100, 30)) as pilot:
        player = app.player
        await pilot.press("2", "down", "down", "minus", "minus")  # drums muted, bass −3 dB
        player.seek_to(5.0)
        await pilot.press("l")
        player.seek_to(8.0)
        await pilot.press("l")  # loop 5–8 s
        loop = player.loop
        player.seek_to(12.0)
        await pilot.pause(0.2)
        await pilot.press("q")
    (saved,) = recall.state_dir().glob("*.json")
    assert json.loads(saved.read_text())["muted"] == [False, True, False, False]

    again = make_app(tmp_path, ab=False)
    async with again.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.2)
        player = again.player
        assert player.muted == [False, True, False, False] and player.gains_db[2] == -2 * GAIN_STEP_DB
        assert loop is not None and abs(loop[0] - 5 * SIGNAL.sample_rate) < SIGNAL.sample_rate // 2
        assert player.loop is not None and np.allclose(player.loop, loop, atol=1)
        assert 11.5 < player.position_s < 13.5
        assert player.transport.snapshot.gains[1] == 0.0  # the sound process plays it so


async def test_a_corrupt_memory_of_a_song_is_ignored(tmp_path: Path) -> None:
    from tuiplayer.player import recall

    first = make_app(tmp_path, ab=False)
    async with first.run_test(size=(100, 30)) as pilot:
        await pilot.press("1", "q")
    (saved,) = recall.state_dir().glob("*.json")
    for junk in ("{not json", "[1, 2]", json.dumps({"format": recall.FORMAT, "gains_db": ["x"]})):
        saved.write_text(junk)
        app = make_app(tmp_path, ab=False)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause(0.1)
            assert app.player.muted == [False] * 4 and app.player.position_s < 2


SONGS = ("a.flac", "song.flac", "c.flac")


async def test_next_and_previous_song_keys(tmp_path: Path) -> None:
    app = make_app(tmp_path, ab=False, songs=SONGS, index=1)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        line = app.query_one("#song").render()
        assert "2/3" in getattr(line, "plain", str(line)) and "next: c.flac" in getattr(line, "plain", str(line))
        first = app.player
        await until(pilot, lambda: first.separation_state == "separated")
        await pilot.press("greater_than_sign")
        await until(pilot, lambda: app.player.path.name == "c.flac")
        assert app.queue.index == 2 and app.queue.states[1] == "separated"  # what the list will say of it
        assert first.song.song not in app.session.players  # let go of
        assert app.session.transport.current == app.player.song.song

        await pilot.press("greater_than_sign")  # the last song: a notice, it plays on
        assert app.player.path.name == "c.flac"
        assert any("no next song" in n.message for n in app._notifications)

        app.player.seek_to(10.0)
        await pilot.press("less_than_sign")  # past 3 s: this song from the start
        assert app.player.path.name == "c.flac" and app.player.position_s < 1.0
        await pilot.press("less_than_sign")
        await until(pilot, lambda: app.player.path.name == "song.flac")
        assert app.queue.index == 1 and len(app.session.players) <= 2


async def test_the_next_song_follows_without_a_gap(tmp_path: Path) -> None:
    app = make_app(tmp_path, ab=False, songs=SONGS)
    async with app.run_test(size=(120, 30)) as pilot:
        first = app.player
        await until(pilot, lambda: app.next is not None)  # prepared once the first is separated
        index, following = app.next  # type: ignore[misc]
        assert index == 1 and app.session.transport.queued == following.song.song
        await until(pilot, lambda: following.separation_state == "separated")  # separated ahead
        assert "separated ahead" in app.queue.states[1]
        first.seek_to(first.duration_s - 0.3)
        await until(pilot, lambda: app.player is following)
        assert app.player.position_s < 1.0 and app.player.playing and app.queue.index == 1
        assert first.song.song not in app.session.players
        line = app.query_one("#song").render()
        assert "2/3" in getattr(line, "plain", str(line)) and "song.flac" in getattr(line, "plain", str(line))


async def test_a_song_that_cannot_be_opened_is_skipped_with_a_notice(tmp_path: Path) -> None:
    from tuiplayer.errors import TuiplayerError
    from tuiplayer.player.app import SongQueue

    def loader(path: Path) -> Audio:
        if path.name == "song.flac":
            raise TuiplayerError("song.flac: not an audio file")
        return make_audio(path=path)

    card = modelstore.resolve("unet")
    queue = SongQueue([tmp_path / name for name in SONGS])
    app = player_app(queue, [card], lambda _card: band_predict, loader=loader, sound=False)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.queue.states.get(1) == "could not be opened")
        await until(pilot, lambda: any("not an audio file" in n.message for n in app._notifications))
        await until(pilot, lambda: app.next is not None)
        assert app.next[0] == 2  # type: ignore[index]
        await pilot.press("greater_than_sign")
        await until(pilot, lambda: app.player.path.name == "c.flac")


async def test_the_song_list_opens_a_song(tmp_path: Path) -> None:
    app = make_app(tmp_path, ab=False, songs=SONGS)
    app.queue.states[2] = "separated"
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("s")
        assert app.screen.__class__.__name__ == "SongListScreen"
        text = " ".join(str(option.prompt) for option in app.screen.query_one("#song-list")._options)
        assert "1. a.flac" in text and "3. c.flac  separated" in text
        await pilot.press("down", "down", "enter")
        await until(pilot, lambda: app.player.path.name == "c.flac")
