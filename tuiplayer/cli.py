"""The `tuiplayer` command line (DESIGN.md §5): parse, dispatch, turn errors into exit codes.

Exit codes: 0 ok; 2 bad input, with one line on stderr; 1 internal error. Heavy imports
(TensorFlow, Textual, the benchmarks) happen inside the commands, so `--help` is instant.
Set TUIPLAYER_DEBUG=1 to see the traceback of an internal error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from tuiplayer import __version__
from tuiplayer.errors import TuiplayerError


def _format_duration(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60.0)
    hours, minutes = divmod(int(minutes), 60)
    clock = f"{minutes:d}:{rest:06.3f}"
    return f"{hours:d}:{minutes:02d}:{rest:06.3f}" if hours else clock


def cmd_info(args: argparse.Namespace) -> int:
    """Format, rate, channels and duration of each file, through the separation loader."""
    from tuiplayer.audio.io import decode

    status = 0
    for name in args.files:
        try:
            info = decode(name).info
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


def cmd_models(args: argparse.Namespace) -> int:
    """The installed model versions and their cards."""
    from tuiplayer import modelstore

    root = modelstore.models_root()
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
        print(f"{card.name} {card.version}{role}: {card.arch}, {card.parameters:,} parameters, {card.folder}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Speed and memory figures."""
    from tuiplayer import bench

    bench.run(json_path=args.json, force=args.force, audio_s=args.seconds)
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with one subcommand per job."""
    parser = argparse.ArgumentParser(
        prog="tuiplayer",
        description="A terminal music player that splits songs into vocals, drums, bass and other.",
    )
    parser.add_argument("--version", action="version", version=f"tuiplayer {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    info = commands.add_parser("info", help="format, sample rate, channels and duration of audio files")
    info.add_argument("files", nargs="+", metavar="FILE")
    info.set_defaults(run=cmd_info)

    models = commands.add_parser("models", help="installed model versions and their cards")
    models.add_argument("--json", action="store_true", help="print the cards as JSON")
    models.set_defaults(run=cmd_models)

    bench = commands.add_parser("bench", help="speed and memory figures (STFT, each model)")
    bench.add_argument("--json", type=Path, metavar="FILE", help="also write the figures to FILE as JSON")
    bench.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    bench.add_argument("--seconds", type=_positive_int, default=240, help="length of the test track (240)")
    bench.set_defaults(run=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    args = build_parser().parse_args(argv)
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
        print(f"tuiplayer: internal error: {type(error).__name__}: {error} "
              "(run with TUIPLAYER_DEBUG=1 for details)", file=sys.stderr)
        return 1


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
