"""Where model versions live and what their cards say (DESIGN.md §5, "Model folder").

A model is a folder `<name>/` holding `model.keras` and `card.json`; the models folder's
`index.json` names the default model and its default A/B partner. This module reads folders
and cards only — loading the network itself is `tuiplayer.nn`'s job — so `tuiplayer models`
and the player's start-up never wait for TensorFlow.

The models folder is, in order: `$TUIPLAYER_MODELS`; the copy inside an installed wheel
(`tuiplayer/_models`); the repository's top-level `models/` (source checkouts and editable
installs).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuiplayer.config import SIGNAL, STEMS
from tuiplayer.errors import ModelError

MODELS_ENV = "TUIPLAYER_MODELS"
INDEX_FILE = "index.json"
CARD_FILE = "card.json"
ENSEMBLE_FILE = "ensemble.json"
"""An ensemble's card (tuiplayer.nn.ensemble): card.json's fields plus its members, in a folder
with no weights of its own — so a card.json always has its model.keras beside it."""
WEIGHTS_FILE = "model.keras"


def models_root() -> Path:
    """The folder holding the installed model versions (see the module docstring)."""
    override = os.environ.get(MODELS_ENV)
    if override:
        return Path(override)
    package = Path(__file__).resolve().parent
    bundled = package / "_models"
    if bundled.is_dir():
        return bundled
    return package.parent / "models"


@dataclass(frozen=True)
class ModelCard:
    """What a model folder's card.json says, plus where it is.

    signal: the numbers of DESIGN.md §2 the model was trained with (SignalConfig.as_dict()).
    training: data, steps, hours, hardware. metrics: measured figures (SDR per stem on named
    datasets, real-time factor on named hardware).
    """

    name: str
    version: str
    arch: str
    stems: tuple[str, ...]
    signal: dict[str, int]
    parameters: int
    sha256: str
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    runtimes: dict[str, Any] = field(default_factory=dict)
    """Other runtimes' files made from model.keras, e.g. {"tflite": {"file", "sha256", …}} (nn.lite)."""
    in_other: tuple[str, ...] = ()
    """Stems this model does not separate: their sound stays in "other" (e.g. drums and bass in
    a 2-stem model); their masks are 0."""
    provenance: dict[str, Any] = field(default_factory=dict)
    """Where weights not trained here come from: source, licence, the original files' sha256."""
    members: tuple[dict[str, Any], ...] = ()
    """An ensemble's members, in order: {"model": NAME, "stems": [...], "input": "song"|"rest"}
    (see ensemble_members); empty for a single model."""
    folder: Path = Path()

    @property
    def is_ensemble(self) -> bool:
        return bool(self.members)

    @property
    def weights(self) -> Path:
        return self.folder / WEIGHTS_FILE

    @property
    def card_path(self) -> Path:
        """The file the card was read from: card.json, or an ensemble's ensemble.json."""
        return self.folder / (ENSEMBLE_FILE if self.is_ensemble else CARD_FILE)

    def as_json(self) -> dict[str, Any]:
        """The card as `models --json` prints it (card fields plus its folder)."""
        return {
            "name": self.name, "version": self.version, "arch": self.arch, "stems": list(self.stems),
            "signal": self.signal, "parameters": self.parameters, "sha256": self.sha256,
            "training": self.training, "metrics": self.metrics, "runtimes": self.runtimes,
            "in_other": list(self.in_other), "provenance": self.provenance,
            "members": [dict(member) for member in self.members], "path": str(self.folder),
        }


def card_file(folder: Path) -> Path | None:
    """The card in a model folder: its card.json, else its ensemble.json, else None."""
    for name in (CARD_FILE, ENSEMBLE_FILE):
        if (folder / name).is_file():
            return folder / name
    return None


def read_card(folder: Path) -> ModelCard:
    """Read and check the card of a model folder (card_file); ModelError (one line) if missing
    or unusable. An ensemble.json must name members; a card.json must not."""
    path = card_file(folder)
    if path is None:
        raise ModelError(f"{folder}: not a model folder (no {CARD_FILE})")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelError(f"{path}: unreadable model card ({error})") from None
    try:
        card = ModelCard(
            name=str(raw["name"]), version=str(raw["version"]), arch=str(raw["arch"]),
            stems=tuple(raw["stems"]), signal=dict(raw["signal"]), parameters=int(raw["parameters"]),
            sha256=str(raw["sha256"]), training=dict(raw.get("training", {})),
            metrics=dict(raw.get("metrics", {})), runtimes=dict(raw.get("runtimes", {})),
            in_other=tuple(str(stem) for stem in raw.get("in_other", ())),
            provenance=dict(raw.get("provenance", {})),
            members=tuple(_member(entry) for entry in raw.get("members", ())), folder=folder,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ModelError(f"{path}: model card lacks or mangles {error}") from None
    if card.stems != STEMS:
        raise ModelError(f"{path}: model separates {card.stems}, this player needs {STEMS}")
    if not set(card.in_other) <= set(STEMS) - {"other"}:
        raise ModelError(f"{path}: in_other names {list(card.in_other)}; only {', '.join(STEMS[:-1])} may be in other")
    if card.is_ensemble != (path.name == ENSEMBLE_FILE):
        raise ModelError(f"{path}: an ensemble's card is {ENSEMBLE_FILE} and names its members; "
                         f"a {CARD_FILE} describes one model with its {WEIGHTS_FILE}")
    if card.members and not each_stem_once(card.members):
        raise ModelError(f"{path}: the ensemble's members must produce each of {', '.join(STEMS)} exactly once")
    if card.signal != SIGNAL.as_dict():
        differ = sorted(k for k in SIGNAL.as_dict() if card.signal.get(k) != SIGNAL.as_dict()[k])
        raise ModelError(f"{path}: model was trained with other signal settings ({', '.join(differ)})")
    return card


def each_stem_once(members: Any) -> bool:
    """Whether an ensemble's members produce each of STEMS exactly once."""
    return sorted(stem for member in members for stem in member["stems"]) == sorted(STEMS)


def _member(entry: Any) -> dict[str, Any]:
    """One ensemble member of a card, checked: {"model": str, "stems": [...], "input": "song"|"rest"}."""
    member = {"model": str(entry["model"]), "stems": [str(stem) for stem in entry["stems"]],
              "input": str(entry.get("input", "song"))}
    if member["input"] not in ENSEMBLE_INPUTS or not set(member["stems"]) <= set(STEMS) or not member["stems"]:
        raise ValueError(f"member {entry}")
    return member


ENSEMBLE_INPUTS = ("song", "rest")
"""What an ensemble member separates: the song, or the rest (the song times what the members
before it left unassigned, e.g. the accompaniment after a vocals model)."""


def ensemble_identity(members: list[tuple[ModelCard, dict[str, Any]]]) -> str:
    """The sha256 that names an ensemble (its card's "sha256", the cache's key): from its
    members' weights, stems and inputs, so new weights in a member make a new identity."""
    recipe = [{"sha256": card.sha256, "stems": member["stems"], "input": member["input"]} for card, member in members]
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def ensemble_members(card: ModelCard) -> list[tuple[ModelCard, dict[str, Any]]]:
    """An ensemble's members (installed beside it) with their entries, after checking that they
    are the ones its card was made (and measured) with; ModelError (one line) otherwise."""
    members = []
    for member in card.members:
        member_card = resolve(member["model"], card.folder.parent)
        if member_card.is_ensemble:
            raise ModelError(f"{card.name}: member {member_card.name} is an ensemble itself")
        members.append((member_card, member))
    if ensemble_identity(members) != card.sha256:
        raise ModelError(f"{card.name}: its members changed since its card was written "
                         f"(tuiplayer models ensemble {card.name} … --force)")
    return members


def installed(root: Path | None = None) -> list[ModelCard]:
    """Every model folder under root with a valid card, sorted by name (broken ones skipped)."""
    root = root or models_root()
    cards = []
    for folder in sorted(p for p in root.glob("*/") if card_file(p) is not None):
        try:
            cards.append(read_card(folder))
        except ModelError:
            continue
    return cards


def read_index(root: Path | None = None) -> dict[str, str | None]:
    """The models folder's index: {"default": name or None, "ab": name or None}."""
    root = root or models_root()
    try:
        raw = json.loads((root / INDEX_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"default": None, "ab": None}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelError(f"{root / INDEX_FILE}: unreadable ({error})") from None
    if not isinstance(raw, dict) or not all(isinstance(raw.get(k), (str, type(None))) for k in ("default", "ab")):
        raise ModelError(f"{root / INDEX_FILE}: not a models index (expected {{\"default\": NAME, \"ab\": NAME}})")
    return {"default": raw.get("default"), "ab": raw.get("ab")}


def resolve(name_or_path: str | None, root: Path | None = None) -> ModelCard:
    """A model by installed name, by folder path, or (None) the index's default."""
    root = root or models_root()
    if name_or_path is None:
        name_or_path = read_index(root)["default"]
        if name_or_path is None:
            raise ModelError(f"no default model is installed in {root}")
    candidate = Path(name_or_path)
    if candidate.name == WEIGHTS_FILE:
        candidate = candidate.parent
    # an installed name wins over a same-named folder that holds no model
    if card_file(candidate) is None and (root / str(name_or_path)).is_dir():
        candidate = root / str(name_or_path)
    if not candidate.is_dir():
        names = ", ".join(card.name for card in installed(root)) or "none"
        raise ModelError(f"no model named {name_or_path!r} (installed: {names})")
    return read_card(candidate)


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB pieces."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for piece in iter(lambda: handle.read(1 << 20), b""):
            digest.update(piece)
    return digest.hexdigest()


def verify_weights(card: ModelCard) -> Path:
    """The card's model.keras, after checking it exists and matches the card's sha256 (for an
    ensemble: its members', and that they are the ones on its card; returns its card file)."""
    if card.is_ensemble:
        for member_card, _ in ensemble_members(card):
            verify_weights(member_card)
        return card.card_path
    if not card.weights.is_file():
        raise ModelError(f"{card.folder}: {WEIGHTS_FILE} is missing")
    if file_sha256(card.weights) != card.sha256:
        raise ModelError(f"{card.weights}: checksum does not match its card (corrupt or replaced)")
    return card.weights


def record_metrics(card: ModelCard, section: str, label: str, figures: dict[str, Any]) -> ModelCard:
    """Write measured figures into the card: card.metrics[section][label] = figures.

    Used by `eval --record` (section "sdr", or "bsseval" with --bsseval) and `bench --record`
    (section "speed"); the weights are untouched, so the checksum stays valid. The card is
    rewritten atomically.
    """
    from tuiplayer.files import write_text

    path = card.card_path
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw.setdefault("metrics", {}).setdefault(section, {})[label] = figures
    write_text(path, json.dumps(raw, indent=2) + "\n", force=True)
    return read_card(card.folder)
