"""The player's keys, and remapping them from a config file.

Every key has an id; `~/.config/tuiplayer/keys.toml` (or `$XDG_CONFIG_HOME/tuiplayer/keys.toml`)
may give any id other keys, in Textual's key names, several separated by commas:

    [keys]
    play = "p,space"
    mute_vocals = "v"
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from tuiplayer.config import STEMS
from tuiplayer.errors import BadInput


@dataclass(frozen=True)
class Key:
    id: str
    keys: str  # Textual key names, comma-separated
    action: str  # the App action it runs
    description: str
    footer: str = ""  # its short label in the footer ("": only in the help screen)


SOLO_KEYS = ("exclamation_mark", "at", "number_sign", "dollar_sign")

KEYS: tuple[Key, ...] = (
    Key("play", "space", "toggle_play", "play / pause", footer="play"),
    Key("seek_back", "left", "seek(-5)", "back 5 s"),
    Key("seek_forward", "right", "seek(5)", "forward 5 s"),
    Key("seek_back_long", "comma,shift+left", "seek(-60)", "back 60 s"),
    Key("seek_forward_long", "full_stop,shift+right", "seek(60)", "forward 60 s"),
    *(Key(f"mute_{stem}", str(j + 1), f"mute({j})", f"mute {stem}") for j, stem in enumerate(STEMS)),
    *(Key(f"solo_{stem}", SOLO_KEYS[j], f"solo({j})", f"solo {stem} (shift+{j + 1})")
      for j, stem in enumerate(STEMS)),
    Key("select_up", "up", "select(-1)", "select the stem above"),
    Key("select_down", "down", "select(1)", "select the stem below"),
    Key("gain_up", "plus,equals_sign", "gain(1)", "selected stem louder", footer="louder"),
    Key("gain_down", "minus,underscore", "gain(-1)", "selected stem softer", footer="softer"),
    Key("reset", "0", "reset_mix", "reset the mix", footer="reset"),
    Key("switch_model", "a", "switch_model", "A/B: switch model", footer="A/B"),
    Key("slower", "left_square_bracket", "tempo(-1)", "slower (5 %), pitch kept"),
    Key("faster", "right_square_bracket", "tempo(1)", "faster (5 %), pitch kept"),
    Key("pitch_down", "left_curly_bracket", "pitch(-1)", "a semitone down, tempo kept"),
    Key("pitch_up", "right_curly_bracket", "pitch(1)", "a semitone up, tempo kept"),
    Key("own_speed", "backslash", "own_speed", "the song's own tempo and pitch"),
    Key("loop", "l", "loop", "A-B loop: set start, set end, clear", footer="loop"),
    Key("view", "v", "toggle_view", "spectrogram: mix / selected stem"),
    Key("export", "e", "export", "export the remix and stems", footer="export"),
    Key("next_song", "greater_than_sign", "song(1)", "next song"),
    Key("previous_song", "less_than_sign", "song(-1)", "previous song (or this one from the start)"),
    Key("songs", "s", "songs", "the song list"),
    Key("help", "question_mark", "help", "all keys", footer="keys"),
    Key("quit", "q", "quit", "quit", footer="quit"),
)

KEY_IDS = frozenset(key.id for key in KEYS)


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "tuiplayer" / "keys.toml"


def load_keymap(path: Path | None = None) -> dict[str, str]:
    """{key id: keys} from the config file ({} when there is none); BadInput for a broken one."""
    path = path or config_path()
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise BadInput(f"{path}: cannot read the key config ({error})") from None
    keys = data.get("keys", {})
    if not isinstance(keys, dict):
        raise BadInput(f"{path}: [keys] must be a table of id = \"key,...\"")
    unknown = sorted(set(keys) - KEY_IDS)
    if unknown:
        raise BadInput(f"{path}: unknown key id {unknown[0]!r} (known: {', '.join(k.id for k in KEYS)})")
    bad = [name for name, value in keys.items() if not isinstance(value, str) or not value.strip()]
    if bad:
        raise BadInput(f"{path}: {bad[0]} must be a string of key names, e.g. \"p\" or \"p,space\"")
    return {name: value.replace(" ", "") for name, value in keys.items()}


def display(keys: str) -> str:
    """Key names as a person reads them: 'comma,shift+left' → ', shift+←'."""
    names = {"space": "space", "left": "←", "right": "→", "up": "↑", "down": "↓", "comma": ",",
             "full_stop": ".", "plus": "+", "minus": "−", "equals_sign": "=", "underscore": "_",
             "question_mark": "?", "exclamation_mark": "!", "at": "@", "number_sign": "#",
             "dollar_sign": "$", "left_square_bracket": "[", "right_square_bracket": "]",
             "left_curly_bracket": "{", "right_curly_bracket": "}", "backslash": "\\",
             "shift+left": "shift+←", "shift+right": "shift+→"}
    return " ".join(names.get(key, key) for key in keys.split(","))
