"""The `tuiplayer` command line (DESIGN.md §5): parse, dispatch, turn errors into exit codes.

Exit codes: 0 ok; 2 bad input, with one line on stderr; 1 internal error. Heavy imports
(TensorFlow, Textual, the benchmarks) happen inside the commands, so `--help` is instant.
Set TUIPLAYER_DEBUG=1 to see the traceback of an internal error.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tuiplayer import __version__
from tuiplayer.config import MODEL_SELECTIONS, STEMS
from tuiplayer.errors import BadInput, TuiplayerError
from tuiplayer.files import check_folder_writable, check_writable, write_text


def _format_duration(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60.0)
    hours, minutes = divmod(int(minutes), 60)
    clock = f"{minutes:d}:{rest:06.3f}"
    return f"{hours:d}:{minutes:02d}:{rest:06.3f}" if hours else clock


def cmd_info(args: argparse.Namespace) -> int:
    """Format, rate, channels and duration of each file, read as the player decodes it (piece
    by piece: any length in bounded memory)."""
    from tuiplayer.audio.io import scan

    status = 0
    for name in args.files:
        try:
            info = scan(name)
        except TuiplayerError as error:
            print(f"tuiplayer: {error}", file=sys.stderr)
            status = max(status, error.exit_code)
            continue
        streams = f", {info.audio_streams} audio streams" if info.audio_streams > 1 else ""
        print(
            f"{name}: {info.format}, {info.sample_rate} Hz, {info.channels} "
            f"channel{'s' if info.channels != 1 else ''}, {_format_duration(info.duration_s)} "
            f"({info.n_samples} samples){streams}"
        )
        for warning in info.warnings:
            print(f"  warning: {warning}")
    return status


def cmd_play(args: argparse.Namespace) -> int:
    """Open songs in the player (`tuiplayer FILE_OR_FOLDER_OR_M3U...` is the same): one after
    another without a gap, `>` and `<` to move."""
    from tuiplayer import modelstore, playlist
    from tuiplayer.nn.runtime import load_for_player
    from tuiplayer.playback import stretch
    from tuiplayer.playback.output import AudioDeviceError
    from tuiplayer.player.app import SongQueue, make_app
    from tuiplayer.player.keys import load_keymap
    from tuiplayer.separation.cache import StemCache

    keymap = load_keymap()
    if (args.tempo is not None or args.pitch is not None) and not args.no_audio and not stretch.available():
        raise BadInput(stretch.MISSING)
    cards = [modelstore.resolve(args.model)]
    partner = args.ab if args.ab is not None else (modelstore.read_index().get("ab") if args.model is None else None)
    if partner:
        cards.append(modelstore.resolve(partner))
    songs = playlist.expand(args.files)
    queue = SongQueue(songs.paths, notices=list(songs.notices))
    with _native_stderr_to_log():
        # the separation and sound processes fork now, before any song is decoded and before
        # the screen's threads start
        app = make_app(queue, cards, load_for_player, device=args.device, sound=not args.no_audio,
                       cache=StemCache(), keymap=keymap, mute=tuple(STEMS.index(stem) for stem in args.mute or ()),
                       latency=args.latency, tempo=args.tempo, semitones=args.pitch)
        try:
            wrong_device = args.device is not None and app.session.transport.error is not None
            if not wrong_device:
                app.startup_probe = bool(os.environ.get("TUIPLAYER_STARTUP_PROBE"))
                app.run(headless=app.startup_probe)
        finally:
            app.session.close()
    if wrong_device:  # one line before the screen opens
        raise AudioDeviceError(str(app.session.transport.error))
    return int(app.return_code or 0)


@contextlib.contextmanager
def _native_stderr_to_log() -> Iterator[None]:
    """While the player's screen is up, what native libraries print to file descriptor 2
    (TensorFlow's start-up logging, ALSA's complaints) goes to a log file instead of over
    the screen, which Textual draws through sys.__stderr__, moved to a copy of the terminal."""
    if not sys.__stderr__ or not sys.__stderr__.isatty():
        yield
        return
    from tuiplayer.separation.cache import cache_dir

    try:
        log_dir = cache_dir()
        log_dir.mkdir(parents=True, exist_ok=True)
        log = open(log_dir / "player.log", "ab")  # noqa: SIM115 - closed below
    except OSError:
        yield
        return
    terminal = os.dup(2)
    saved = sys.__stderr__
    sys.__stderr__ = os.fdopen(os.dup(terminal), "w", buffering=1, encoding=saved.encoding, errors="replace")
    os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(terminal, 2)
        os.close(terminal)
        sys.__stderr__.close()
        sys.__stderr__ = saved
        log.close()


def cmd_demo(args: argparse.Namespace) -> int:
    """The bundled demo song in the player."""
    from tuiplayer.assets import DEMO_SONG

    if not DEMO_SONG.is_file():
        raise TuiplayerError(f"the demo song is missing from this installation ({DEMO_SONG})")
    args.files = [str(DEMO_SONG)]
    return cmd_play(args)


def cmd_models(args: argparse.Namespace) -> int:
    """The installed model versions and their cards."""
    from tuiplayer import modelstore

    root = modelstore.models_root()
    if args.action == "import":
        return _import_model(args, root)
    if args.action == "ensemble":
        from tuiplayer.nn.ensemble import write_ensemble

        if len(args.operands) != 1 or not args.member:
            raise BadInput("models ensemble: give NAME and its members (tuiplayer models ensemble NAME "
                           "--member spleeter-2stems:vocals --member hybrid:drums,bass,other)")
        out = args.out or root / args.operands[0]
        card = write_ensemble(out, args.member, version=args.model_version, force=args.force)
        print(f"wrote {card.card_path} ({card.name}: "
              + ", then ".join(f"{', '.join(m['stems'])} from {m['model']}"
                               + (" on what is left" if m["input"] == "rest" else "") for m in card.members) + ")")
        return 0
    if args.action == "tflite":
        from tuiplayer.nn import lite

        if len(args.operands) != 1:
            raise BadInput("models tflite: name the model (tuiplayer models tflite NAME)")
        card = lite.export(modelstore.resolve(args.operands[0]), force=args.force)
        entry = card.runtimes["tflite"]
        print(f"wrote {card.folder / lite.LITE_FILE} (its masks within {entry['max_abs_difference']:.1e} "
              "of the Keras model's)")
        return 0
    cards = modelstore.installed(root)
    if args.json:
        print(json.dumps([card.as_json() for card in cards], indent=2))
        return 0
    index = modelstore.read_index(root)
    if not cards:
        print(f"No models installed in {root}.")
        return 0
    for card in cards:
        role = " (default)" if card.name == index["default"] else " (A/B)" if card.name == index["ab"] else ""
        origin = f" ({card.provenance['source'].split(',')[0]}, {card.provenance['licence'].split(' ')[0]})" \
            if "licence" in card.provenance else ""
        members = " of " + " + ".join(f"{m['model']} ({','.join(m['stems'])}"
                                      + (" on the rest)" if m["input"] == "rest" else ")") for m in card.members) \
            if card.is_ensemble else ""
        print(f"{card.name} {card.version}{role}: {card.arch}{origin}{members}, {card.parameters:,} parameters, "
              f"{card.folder}")
    return 0


def _import_model(args: argparse.Namespace, root: Path) -> int:
    """`models import spleeter DIR`: a Spleeter checkpoint folder → a model folder of ours."""
    if len(args.operands) != 2 or args.operands[0] != "spleeter":
        raise BadInput("models import: give the kind and the folder (tuiplayer models import spleeter "
                       "pretrained_models/2stems)")
    from tuiplayer.nn import spleeter

    folder = Path(args.operands[1])
    if not folder.is_dir():
        raise BadInput(f"{folder}: no such folder (give a Spleeter checkpoint folder, e.g. pretrained_models/2stems)")
    out = spleeter.import_checkpoint(folder, args.out, root=root, name=args.name, force=args.force)
    print(f"wrote {out} (Spleeter's weights, MIT licence; its model.tflite checked against the Keras model)")
    return 0


def cmd_audio(args: argparse.Namespace) -> int:
    """The outputs PortAudio sees, the one the player would use and why, and the sound server
    PULSE_SERVER names: the first thing to run when there is no sound."""
    from tuiplayer.playback import output, pulse

    ok, server = pulse.reachable()
    outputs = output.list_outputs()
    try:
        chosen: output.OutputChoice | None = output.choose_output(args.device)
    except output.AudioDeviceError as error:
        chosen, problem = None, str(error)
    print("Outputs PortAudio sees:" if outputs else "PortAudio sees no output at all.")
    for index, name, api, channels in outputs:
        mark = "▶" if chosen is not None and index == chosen.index else " "
        print(f" {mark} {index:>3}  {name} ({api}, {channels} ch)")
    if chosen is not None:
        print(f"The player would play through {chosen.index} {chosen.name}: {chosen.why}; "
              f"latency {output.default_latency() * 1000:.0f} ms"
              f"{' (a network link: PULSE_SERVER is set)' if output.pulse_server() else ''}"
              "; --latency MS asks for another.")
    elif output.pulse_server() and args.device is None:
        print(f"The player cannot play yet ({problem}); it plays silently (the playhead keeps time) and "
              "connects when the server answers.")
    else:
        print(f"The player cannot play: {problem}. It runs on a silent clock (or use --no-audio).")
    unreachable = not ok and output.pulse_server()
    if not (unreachable and chosen is None):  # (said just above)
        print(f"{server}. Is the SSH tunnel (ssh -R) or the server up?" if unreachable else server)
    return 0 if chosen is not None else 2


def cmd_bench(args: argparse.Namespace) -> int:
    """Speed and memory figures."""
    from tuiplayer import bench

    if args.json:
        check_writable(args.json, force=args.force)
    if args.link:
        bench.run_link(json_path=args.json, force=args.force)
        return 0
    if args.player or args.soak:
        bench.run_player(json_path=args.json, force=args.force, soak=args.soak)
        return 0
    result = bench.run(json_path=args.json, force=args.force, audio_s=args.seconds, models=args.model,
                       engine_s=args.engine_seconds)
    if args.record:
        from tuiplayer import modelstore
        from tuiplayer.nn.train import hardware

        for name, figures in result["models"].items():
            modelstore.record_metrics(modelstore.resolve(name), "speed", hardware(), {
                key: figures[key] for key in ("block_s", "rtf", "song_rtf", "load_s")})
        print(f"recorded the speed of {', '.join(result['models'])} on their cards")
    return 0


def _progress_bar() -> Any:
    """A rich progress bar on stderr (stdout stays for results): description, bar, n/N, times."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    return Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True))


def cmd_separate(args: argparse.Namespace) -> int:
    """Separate files (or folders of files) into stem files, loading the model once."""
    return _write_songs(args, what=("stems",))


def cmd_export(args: argparse.Namespace) -> int:
    """`e` for scripts: the stems, the remix (at --mute/--gain, --tempo/--pitch) and a Native
    Instruments Stems file of each song."""
    from tuiplayer.audio.io import ffmpeg_available
    from tuiplayer.playback import stretch
    from tuiplayer.player.core import GAIN_MAX_DB, GAIN_MIN_DB, db_to_gain
    from tuiplayer.separation.export import EXPORTS

    what = tuple(args.only or EXPORTS)
    tempo, semitones = args.tempo or 1.0, args.pitch or 0
    if "remix" in what and (tempo, semitones) != (1.0, 0) and not stretch.available():
        raise BadInput(stretch.MISSING)
    if "ni" in what and not ffmpeg_available():
        raise BadInput("a Stems file (.stem.mp4) needs ffmpeg: install the Debian package ffmpeg, or use --only")
    gains_db = dict.fromkeys(STEMS, 0.0)
    for stem, db in args.gain or ():
        if not GAIN_MIN_DB <= db <= GAIN_MAX_DB:
            raise BadInput(f"--gain {stem}={db:g}: must be {GAIN_MIN_DB:g}…{GAIN_MAX_DB:g} dB (or --mute {stem})")
        gains_db[stem] = db
    gains = tuple(0.0 if stem in (args.mute or ()) else db_to_gain(gains_db[stem]) for stem in STEMS)
    return _write_songs(args, what=what, gains=gains, tempo=tempo, semitones=semitones)


def _write_songs(args: argparse.Namespace, what: tuple[str, ...], gains: tuple[float, ...] = (1.0,) * len(STEMS),
                 tempo: float = 1.0, semitones: int = 0) -> int:
    """Separate each song of args.files (files, folders, playlists; cache first, the model
    loaded once, when needed) and write what `what` asks (separation.export.EXPORTS) into
    args.output/<song>/. One line per song that fails; the worst exit code."""
    import numpy as np

    from tuiplayer import modelstore, playlist
    from tuiplayer.audio.io import check_audio_file, load
    from tuiplayer.nn import runtime
    from tuiplayer.separation import export
    from tuiplayer.separation.cache import StemCache, cached_or_separated
    from tuiplayer.separation.separator import Separator

    expanded = playlist.expand(args.files)
    for notice in expanded.notices:
        print(f"tuiplayer: note: {notice}", file=sys.stderr)
    songs = expanded.paths
    card = modelstore.resolve(args.model)
    status = 0
    checked = []
    for song in songs:  # what can be told without the model first (it takes seconds to load)
        try:
            check_audio_file(song)
            paths = export.export_paths(args.output, song, args.format, what=what, tempo=tempo, semitones=semitones)
            export.check_free(paths.values(), args.force)
            export.check_writable(paths.values(), force=True)  # (existing files: check_free said)
            checked.append((song, paths))
        except TuiplayerError as error:
            print(f"tuiplayer: {error}", file=sys.stderr)
            status = max(status, error.exit_code)
    if not checked:
        return status
    modelstore.verify_weights(card)
    separator: Separator | None = None
    cache = StemCache()
    with _progress_bar() as bar:
        overall = bar.add_task(f"{len(checked)} file{'s' if len(checked) != 1 else ''} with {card.name}",
                               total=len(checked))
        for song, paths in checked:
            try:
                audio = load(song)
                task = bar.add_task(f"  {song.name}", total=None)

                def progress(done: int, total: int, task: Any = task) -> None:
                    bar.update(task, completed=done, total=total)

                def separate(samples: np.ndarray, progress: Any = progress) -> np.ndarray:
                    nonlocal separator
                    separator = separator or Separator(runtime.load(card), batch_size=8)
                    return separator.separate(samples, progress=progress)

                stems, cached, problem = cached_or_separated(cache, audio.samples, card.sha256, separate)
                if problem:
                    bar.console.print(f"tuiplayer: note: {problem}", highlight=False, markup=False, soft_wrap=True)
                if cached:
                    progress(1, 1)
                export.write_export(stems, gains, audio.source, paths, tempo=tempo, semitones=semitones,
                                    force=args.force)
                folder = next(iter(paths.values())).parent
                bar.update(task, description=f"  {song.name}{' (cached)' if cached else ''} → {folder}")
            except TuiplayerError as error:
                bar.console.print(f"tuiplayer: {error}", style="red", highlight=False, markup=False, soft_wrap=True)
                status = max(status, error.exit_code)
            bar.advance(overall)
    return status


def cmd_synth(args: argparse.Namespace) -> int:
    """Render synthetic multitrack songs in the MUSDB18-HQ layout."""
    from tuiplayer.synth import generate

    bar = _progress_bar()
    task = bar.add_task(f"rendering {args.songs} songs", total=args.songs)

    def progress(done: int, total: int) -> None:
        if not bar.live.is_started:  # only once the songs are checked and rendering begins
            bar.start()
        bar.update(task, completed=done)

    try:
        paths = generate(args.out, songs=args.songs, seconds=args.seconds, seed=args.seed,
                         soundfonts=args.soundfont or None, jobs=args.jobs, force=args.force, progress=progress,
                         recipe=args.recipe)
    finally:
        bar.stop()
    print(f"{len(paths)} songs in {args.out}")
    return 0


def cmd_sources(args: argparse.Namespace) -> int:
    """Decode the real recordings of the Debian packages that are installed (data.real)."""
    from tuiplayer.data import real

    if args.check:
        report = real.check(args.out)
        if args.data:
            from tuiplayer.data.store import StemStore
            from tuiplayer.data.tracks import find_tracks

            report["examples"] = real.check_examples(args.out, StemStore.open(find_tracks(args.data)))
        print(json.dumps(report, indent=1))
        return 0
    check_folder_writable(args.out)
    index = real.prepare(args.out, force=args.force)
    hours = ", ".join(f"{role} {seconds / 3600:.2f} h" for role, seconds in index["seconds"].items())
    print(f"wrote {args.out / real.INDEX_FILE}: {len(index['sources'])} recordings ({hours})")
    if index["missing_packages"]:
        print("not installed (nothing taken from them): " + " ".join(index["missing_packages"]), file=sys.stderr)
    if not index["sources"]:
        raise BadInput("none of the packages is installed: sudo apt-get install " + " ".join(
            sorted({source.package for source in real.SOURCES})))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train a separator and write its model folder."""
    from tuiplayer.nn.train import TrainConfig, parse_options, train

    out = Path(args.out)
    config = TrainConfig(
        data=tuple(str(path) for path in args.data), arch=args.arch, out=str(out),
        run_dir=str(args.run_dir or Path("runs") / out.name), steps=args.steps,
        steps_per_epoch=args.steps_per_epoch, batch_size=args.batch_size,
        learning_rate=args.learning_rate, seed=args.seed,
        validation=str(args.validation) if args.validation else None, hours=args.hours,
        version=args.version, options=parse_options(args.option), init=args.init,
        stem_weights=args.stem_weights, select=args.select,
        real=str(args.real) if args.real else None, real_share=args.real_share,
    )
    for folder in (*config.data, *([config.validation] if config.validation else [])):
        if not Path(folder).is_dir():
            raise BadInput(f"{folder}: no such dataset folder")
    train(config, resume=not args.restart, force=args.force)
    from tuiplayer import modelstore
    from tuiplayer.nn import lite

    try:  # the player's runtime: the same model for LiteRT
        lite.export(modelstore.resolve(str(out)), force=True)
    except ImportError:  # (trained under JAX or PyTorch: no TensorFlow here)
        print(f"note: run `tuiplayer models tflite {out}` where TensorFlow is installed, for the player's "
              "fast start", file=sys.stderr)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """SDR of models on a dataset, always beside the oracle and mixture/4 rows."""
    import numpy as np

    from tuiplayer import evaluation, modelstore
    from tuiplayer.config import STEMS
    from tuiplayer.data.tracks import find_tracks
    from tuiplayer.nn import runtime
    from tuiplayer.separation.separator import Separator

    if args.json:
        check_writable(args.json, force=args.force)
    tracks = find_tracks(args.dataset, subset=args.subset)
    cards = [] if args.oracle else [modelstore.resolve(name) for name in (args.model or [None])]
    if args.record and len(cards) != 1:
        raise BadInput("--record needs exactly one --model (the card the figures are written to)")
    metric = "bsseval" if args.bsseval else "sdr"
    if metric == "bsseval" and importlib.util.find_spec("museval") is None:
        raise BadInput("--bsseval needs museval: pip install museval")
    models = {card.name: Separator(runtime.load(card)) for card in cards}

    def songs():  # one track in memory at a time: (name, stems (n_samples, 2, n_stems))
        for track in tracks:
            stems = track.load_stems()
            yield track.name, np.stack([stems[name] for name in STEMS], axis=-1)

    scores = evaluation.evaluate(
        songs(), models, progress=lambda row, track: print(f"  {row}: {track}", file=sys.stderr), metric=metric
    )
    print(evaluation.format_table(scores, metric))
    if args.record:
        table = evaluation.summary(scores)
        modelstore.record_metrics(cards[0], metric, args.record, {
            "dataset": str(args.dataset), "tracks": len(tracks),
            "statistic": "median over tracks, dB" + (" (museval BSSEval v4: median over 1 s frames per track)"
                                                     if metric == "bsseval" else ""),
            "model": table[cards[0].name], "oracle": table[evaluation.ORACLE_ROW],
            "mix4": table[evaluation.MIX4_ROW], "command": " ".join(["tuiplayer", *sys.argv[1:]]),
        })
        print(f"recorded as {args.record!r} on {cards[0].card_path}")
    if args.json:
        write_text(args.json, json.dumps(scores, indent=2) + "\n", force=args.force)
    return 0


def _device(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {text}")
    return value


def _numbers(text: str) -> tuple[float, ...]:
    """"0.5,1,2,2" → (0.5, 1.0, 2.0, 2.0) (what they must be is checked where they are used)."""
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be numbers separated by commas, not {text}") from None


def _player_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", metavar="NAME|PATH", help="model version to separate with (default: the index's)")
    parser.add_argument("--ab", metavar="NAME|PATH", help="a second model to compare with (key a switches)")
    sound = parser.add_mutually_exclusive_group()
    sound.add_argument("--device", type=_device, metavar="ID", help="output device (number or name)")
    sound.add_argument("--no-audio", action="store_true", help="play silently (the clock still runs)")
    parser.add_argument("--mute", action="append", choices=STEMS, metavar="STEM",
                        help=f"start with this stem muted (repeatable: {', '.join(STEMS)})")
    parser.add_argument("--latency", type=_latency_ms, metavar="MS",
                        help="sound buffered ahead of the speakers, in ms (default: what `tuiplayer audio` says; "
                             "more when PULSE_SERVER names a sound server over a network link)")
    parser.add_argument("--tempo", type=_tempo_percent, metavar="PERCENT",
                        help="start at this tempo, pitch kept (50–150; keys [ and ] change it)")
    parser.add_argument("--pitch", type=_semitones, metavar="SEMITONES",
                        help="start transposed by this many semitones, tempo kept (−6…6; keys { and })")


LATENCY_RANGE_MS = (5, 2000)


def _tempo_percent(text: str) -> float:
    """--tempo PERCENT → a share of the song's own tempo, within playback.stretch's range."""
    from tuiplayer.playback.stretch import TEMPO_MAX, TEMPO_MIN

    try:
        percent = float(text.rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a percentage: {text!r}") from None
    if not 100 * TEMPO_MIN <= percent <= 100 * TEMPO_MAX:
        raise argparse.ArgumentTypeError(f"must be {100 * TEMPO_MIN:.0f}–{100 * TEMPO_MAX:.0f} % (got {text})")
    return percent / 100


def _stem_gain(text: str) -> tuple[str, float]:
    """--gain STEM=DB → (stem, dB)."""
    stem, _, db = text.partition("=")
    if stem not in STEMS:
        raise argparse.ArgumentTypeError(f"{text!r}: give STEM=DB with STEM one of {', '.join(STEMS)}")
    try:
        return stem, float(db)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: the level must be a number of dB, e.g. {stem}=-6") from None


def _semitones(text: str) -> int:
    from tuiplayer.playback.stretch import SEMITONES_MAX

    try:
        semitones = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of semitones: {text!r}") from None
    if abs(semitones) > SEMITONES_MAX:
        raise argparse.ArgumentTypeError(f"must be −{SEMITONES_MAX}…{SEMITONES_MAX} (got {text})")
    return semitones


def _latency_ms(text: str) -> float:
    """--latency MS → seconds, within LATENCY_RANGE_MS."""
    try:
        ms = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of milliseconds: {text!r}") from None
    low, high = LATENCY_RANGE_MS
    if not low <= ms <= high:
        raise argparse.ArgumentTypeError(f"must be {low}–{high} ms (got {text})")
    return ms / 1000


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with one subcommand per job."""
    parser = argparse.ArgumentParser(
        prog="tuiplayer",
        description="A terminal music player that splits songs into vocals, drums, bass and other.",
    )
    parser.add_argument("--version", action="version", version=f"tuiplayer {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    play = commands.add_parser("play", help="open songs in the player (the default: tuiplayer FILE...)")
    play.add_argument("files", nargs="+", metavar="FILE_OR_FOLDER_OR_M3U",
                      help="songs: audio files, folders of them, .m3u/.m3u8 playlists")
    _player_options(play)
    play.set_defaults(run=cmd_play)

    demo = commands.add_parser("demo", help="the bundled demo song in the player")
    _player_options(demo)
    demo.set_defaults(run=cmd_demo)

    info = commands.add_parser("info", help="format, sample rate, channels and duration of audio files")
    info.add_argument("files", nargs="+", metavar="FILE")
    info.set_defaults(run=cmd_info)

    models = commands.add_parser("models", help="installed model versions and their cards")
    models.add_argument("action", nargs="?", choices=("list", "tflite", "import", "ensemble"), default="list",
                        help="list (the default); tflite NAME: make NAME's model.tflite for the player; "
                             "import spleeter DIR: convert a Spleeter checkpoint folder into a model; "
                             "ensemble NAME --member …: a model whose stems come from others "
                             "(tflite and import need TensorFlow)")
    models.add_argument("operands", nargs="*", metavar="ARG", help="NAME (tflite, ensemble) or spleeter DIR (import)")
    models.add_argument("--name", metavar="NAME", help="import: the new model's name (default spleeter-<n>stems)")
    models.add_argument("--out", type=Path, metavar="FOLDER",
                        help="import, ensemble: write the model folder here (default: beside the installed models)")
    models.add_argument("--member", action="append", metavar="MODEL:STEMS[:rest]",
                        help="ensemble: a member, in order, e.g. spleeter-2stems:vocals then "
                             "hybrid:drums,bass,other:rest (rest: it separates what the members before it left)")
    models.add_argument("--version", dest="model_version", default="0.1e", help="ensemble: its version (0.1e)")
    models.add_argument("--json", action="store_true", help="print the cards as JSON")
    models.add_argument("--force", action="store_true", help="replace an existing model.tflite or model folder")
    models.set_defaults(run=cmd_models)

    audio = commands.add_parser("audio", help="the sound outputs, the one the player would use and why")
    audio.add_argument("--device", type=_device, metavar="ID", help="check this output instead (number or name)")
    audio.set_defaults(run=cmd_audio)

    bench = commands.add_parser("bench", help="speed and memory figures (STFT, each model)")
    bench.add_argument("--json", type=Path, metavar="FILE", help="also write the figures to FILE as JSON")
    bench.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    bench.add_argument("--seconds", type=_positive_int, default=240, help="length of the test track (240)")
    bench.add_argument("--model", action="append", metavar="M",
                       help="measure only this model (repeatable; default: every installed one)")
    bench.add_argument("--record", action="store_true", help="write each model's speed into its card")
    bench.add_argument("--engine-seconds", type=_positive_int, default=600,
                       help="length of the song the engine benchmark separates (600)")
    bench.add_argument("--player", action="store_true",
                       help="time the real player from launch by what it plays (a private PulseAudio server and "
                            "tmux), quiet and beside one busy process")
    bench.add_argument("--soak", action="store_true",
                       help="with --player: also play a 10-minute song with a key every 2-4 s (memory, underflows)")
    bench.add_argument("--link", action="store_true",
                       help="play through a relay that delays like a network link (30 ms round trip, jitter) at "
                            "several latencies: what PULSE_SERVER over SSH needs")
    bench.set_defaults(run=cmd_bench)

    separate = commands.add_parser("separate", help="write the stems of songs as audio files")
    separate.add_argument("files", nargs="+", metavar="FILE", help="audio files or folders of them")
    separate.add_argument("-o", "--output", type=Path, required=True, metavar="DIR",
                          help="stems go to DIR/<song name>/{vocals,drums,bass,other}.<format>")
    separate.add_argument("--model", metavar="M", help="model name or folder (default: the default model)")
    separate.add_argument("--format", choices=("wav", "flac"), default="wav")
    separate.add_argument("--force", action="store_true", help="overwrite stems that exist already")
    separate.set_defaults(run=cmd_separate)

    exporting = commands.add_parser(
        "export", help="write the stems, a remix and a Stems file (.stem.mp4) of songs, as `e` does in the player")
    exporting.add_argument("files", nargs="+", metavar="FILE", help="audio files, folders or playlists")
    exporting.add_argument("-o", "--output", type=Path, required=True, metavar="DIR",
                           help="everything goes to DIR/<song name>/: the stems, remix[-tempoN][-pitchN].<format>, "
                                "<song name>.stem.mp4")
    exporting.add_argument("--model", metavar="M", help="model name or folder (default: the default model)")
    exporting.add_argument("--format", choices=("wav", "flac"), default="wav", help="of the stems and the remix")
    exporting.add_argument("--only", action="append", choices=("stems", "remix", "ni"),
                           help="write only this (repeatable; default all three: ni is the .stem.mp4 file)")
    exporting.add_argument("--mute", action="append", choices=STEMS, metavar="STEM",
                           help="leave this stem out of the remix (repeatable)")
    exporting.add_argument("--gain", action="append", type=_stem_gain, metavar="STEM=DB",
                           help="this stem's level in the remix, e.g. bass=-6 (repeatable)")
    exporting.add_argument("--tempo", type=_tempo_percent, metavar="PERCENT",
                           help="the remix at this tempo, pitch kept (50–150; the stems stay at the song's)")
    exporting.add_argument("--pitch", type=_semitones, metavar="SEMITONES",
                           help="the remix transposed by this many semitones (−6…6)")
    exporting.add_argument("--force", action="store_true", help="overwrite files that exist already")
    exporting.set_defaults(run=cmd_export)

    synth = commands.add_parser("synth", help="render synthetic multitrack songs (training data)")
    synth.add_argument("out", type=Path, metavar="OUT", help="dataset folder to write")
    synth.add_argument("--songs", type=_positive_int, required=True)
    synth.add_argument("--seconds", type=float, required=True)
    synth.add_argument("--seed", type=int, required=True)
    synth.add_argument("--soundfont", type=Path, action="append", metavar="PATH",
                       help="General MIDI soundfont (repeatable; default: the Debian ones)")
    synth.add_argument("--jobs", type=_positive_int, help="songs rendered at once (default: the CPU count)")
    synth.add_argument("--recipe", type=int, default=None,
                       help="production recipe: 1 as the shipped models' data, 2 adds guitar amps and bass tone, "
                            "3 recorded acoustic drum kits (AVL) in some songs (default: the newest)")
    synth.add_argument("--force", action="store_true", help="replace songs that exist already")
    synth.set_defaults(run=cmd_synth)

    evaluate = commands.add_parser("eval", help="SDR of models on a dataset, with oracle and mixture/4 rows")
    evaluate.add_argument("dataset", type=Path, metavar="DATASET", help="MUSDB18(-HQ) layout folder")
    evaluate.add_argument("--model", action="append", metavar="M", help="model name or folder (repeatable)")
    evaluate.add_argument("--oracle", action="store_true", help="only the reference rows (oracle, mixture/4)")
    evaluate.add_argument("--subset", choices=("train", "test"), help="only this part of the dataset")
    evaluate.add_argument("--json", type=Path, metavar="FILE", help="also write every score to FILE")
    evaluate.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    evaluate.add_argument("--bsseval", action="store_true",
                          help="BSSEval v4 SDR (museval, median over 1 s frames) instead of the whole-track SDR")
    evaluate.add_argument("--record", metavar="LABEL",
                          help="write the medians into the model's card under this dataset label")
    evaluate.set_defaults(run=cmd_eval)

    sources = commands.add_parser("sources", help="collect real recordings from Debian packages as training "
                                  "material (game soundtracks, Frets on Fire songs, Sonic Pi's drum loops)")
    sources.add_argument("out", type=Path, metavar="DIR", help="folder to write (WAV files and sources.json)")
    sources.add_argument("--force", action="store_true", help="replace files written before")
    sources.add_argument("--check", action="store_true", help="check a prepared folder instead (levels, the "
                         "Frets on Fire guitars' alignment with the rest of their band)")
    sources.add_argument("--data", type=Path, metavar="DIR", help="with --check: also make examples as training "
                         "does, with this dataset's songs, and report their levels")
    sources.set_defaults(run=cmd_sources)

    train = commands.add_parser("train", help="train a separator and write its model folder")
    train.add_argument("--data", type=Path, action="append", required=True, metavar="DIR",
                       help="dataset folder (MUSDB18-HQ layout; repeatable)")
    train.add_argument("--arch", required=True, choices=("unet", "hybrid", "d3net"))
    train.add_argument("--out", required=True, metavar="models/NAME", help="model folder to write")
    train.add_argument("--validation", type=Path, metavar="DIR", help="dataset scored after each epoch")
    train.add_argument("--steps", type=_positive_int, default=20_000)
    train.add_argument("--steps-per-epoch", type=_positive_int, default=250)
    train.add_argument("--batch-size", type=_positive_int, default=8)
    train.add_argument("--learning-rate", type=float, default=1e-3)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--hours", type=float, help="stop after this much training time (resumable)")
    train.add_argument("--version", default="0.1", help="version written on the card")
    train.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                       help="architecture size option (repeatable)")
    train.add_argument("--stem-weights", type=_numbers, metavar="V,D,B,O",
                       help="loss weight per stem (vocals, drums, bass, other); default 1,1,1,1")
    train.add_argument("--select", choices=MODEL_SELECTIONS, default="mean",
                       help="keep the epoch with the best mean SDR, or whose weakest stem is furthest above mixture/4")
    train.add_argument("--init", metavar="MODEL", help="start from this model's weights (continue training)")
    train.add_argument("--real", type=Path, metavar="DIR",
                       help="real recordings prepared by `tuiplayer sources` (partial labels; see --real-share)")
    train.add_argument("--real-share", type=float, default=0.3, metavar="P",
                       help="with --real: the share of examples made from them (default 0.3)")
    train.add_argument("--run-dir", type=Path, help="checkpoints and logs (default runs/NAME)")
    train.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    train.add_argument("--force", action="store_true", help="replace an existing model.keras")
    train.set_defaults(run=cmd_train)
    return parser


def _commands(parser: argparse.ArgumentParser) -> set[str]:
    return {name for action in parser._subparsers._group_actions  # type: ignore[union-attr]
            for name in getattr(action, "choices", {}) or {}}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and not argv[0].startswith("-") and argv[0] not in _commands(parser):
        argv.insert(0, "play")  # tuiplayer FILE = tuiplayer play FILE
    args = parser.parse_args(argv)
    if not os.environ.get("TUIPLAYER_DEBUG"):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's start-up chatter
    try:
        return int(args.run(args))
    except TuiplayerError as error:
        print(f"tuiplayer: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("tuiplayer: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # the last line of defence: one line, not a traceback
        if os.environ.get("TUIPLAYER_DEBUG"):
            raise
        from tuiplayer.files import USER_ERRNOS, describe_os_error

        if isinstance(error, OSError) and error.errno in USER_ERRNOS:  # a full disk, a read-only folder…
            print(f"tuiplayer: {describe_os_error(error)}", file=sys.stderr)
            return 2
        print(f"tuiplayer: internal error: {type(error).__name__}: {error} "
              "(run with TUIPLAYER_DEBUG=1 for details)", file=sys.stderr)
        return 1


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
