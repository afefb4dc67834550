"""Recorded drum kits from Hydrogen (Debian `hydrogen-drumkits`) and a small sampler for them.

`load_kits` reads each kit's drumkit.xml (instruments → velocity layers → sample files) and
names every instrument by the piece it plays ("kick", "snare", "hat_open", "tom_low" …) from its
name. `HydrogenSampler.render` sequences `Hit`s: the layer is picked by velocity, the gain follows
velocity, the closed or pedal hat chokes a ringing open hat, and each piece sits at its own place
in the stereo image. Samples are decoded on first use and cached per process.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from tuiplayer.synth.score import Hit

SAMPLE_RATE = 44100

DEFAULT_DRUMKITS_DIR = Path("/usr/share/hydrogen/data/drumkits")
"""Where Debian's hydrogen-drumkits package puts the kits."""

# (piece, pattern on the lower-cased instrument name); the first match wins
_PIECE_RULES: tuple[tuple[str, str], ...] = (
    ("hat_pedal", r"(hat|hh).*(pedal|pd\b|foot)|pedal.*(hat|hh)"),
    ("hat_open", r"(hat|hh).*(open|op\b|ring|semi)|open.*(hat|hh)|\bohh\b"),
    ("hat_closed", r"(hat|hh)|chh"),
    ("ride_bell", r"ride.*(bell|cup)|\bbell\b"),
    ("ride", r"ride"),
    ("crash", r"crash|china|splash|cymbal"),
    ("rim", r"stick|rim|side"),
    ("clap", r"clap"),
    ("snap", r"snap"),
    ("tom_floor", r"floor"),
    ("tom_high", r"\btom.*(hi|high|1\b)|\bhi.*\btom|high.*\btom"),
    ("tom_mid", r"\btom.*(mid|2\b)|mid.*\btom|middle.*\btom"),
    ("tom_low", r"\btom"),
    ("snare", r"snare|\bsd\b"),
    ("kick", r"kick|bass ?drum|bassdrum|\bbd\b|cajon thump"),
    ("tambourine", r"tambourine|tamb"),
    ("shaker", r"shaker|maraca|cabasa"),
    ("cowbell", r"cowbell|agogo"),
    ("conga_high", r"conga.*(1|hi)|djembe\d? slap|djembe\d? tone"),
    ("conga_low", r"conga|djembe\d? bass"),
    ("bongo_high", r"bongo.*hi"),
    ("bongo_low", r"bongo"),
    ("clave", r"clave|woodblock"),
)

_EXCLUDE = re.compile(r"roll|choke|zap|fx|flink|swish|click|noise|^\d+$|sample:|^\s*$")

PIECE_PAN: dict[str, float] = {
    "kick": 0.0, "snare": 0.05, "rim": 0.05, "clap": 0.0, "snap": 0.1, "hat_closed": -0.35, "hat_pedal": -0.35,
    "hat_open": -0.35, "ride": 0.4, "ride_bell": 0.4, "crash": -0.5, "splash": 0.5, "tom_high": -0.2,
    "tom_mid": 0.1, "tom_low": 0.3, "tom_floor": 0.45, "tambourine": 0.55, "shaker": -0.55, "cowbell": 0.3,
    "conga_high": 0.35, "conga_low": 0.2, "bongo_high": -0.3, "bongo_low": -0.2, "clave": 0.4,
}
"""Where each piece sits (drummer's view, -1 left … +1 right); a song may mirror it."""

FALLBACK: dict[str, tuple[str, ...]] = {
    "hat_pedal": ("hat_closed",), "hat_open": ("hat_closed",), "hat_closed": ("hat_pedal", "shaker", "ride"),
    "ride": ("hat_open", "crash", "hat_closed"), "ride_bell": ("ride", "cowbell"), "crash": ("ride", "hat_open"),
    "splash": ("crash",), "rim": ("snare",), "clap": ("snare",), "snap": ("clap", "rim"),
    "tom_high": ("tom_mid", "tom_low", "snare"), "tom_mid": ("tom_low", "tom_high", "snare"),
    "tom_low": ("tom_floor", "tom_mid", "snare"), "tom_floor": ("tom_low", "tom_mid", "kick"),
    "conga_high": ("bongo_high", "conga_low"), "conga_low": ("bongo_low", "conga_high"),
    "bongo_high": ("conga_high",), "bongo_low": ("conga_low",),
}
"""Pieces to play instead when a kit lacks one (None of them: the hit is dropped)."""


@dataclass(frozen=True)
class Layer:
    """One sample of an instrument, used for velocities in [min_velocity, max_velocity]."""

    path: Path
    min_velocity: float
    max_velocity: float
    gain: float


@dataclass(frozen=True)
class Instrument:
    """A kit instrument: its name, the piece it plays, volume, and velocity layers."""

    name: str
    piece: str
    volume: float
    layers: tuple[Layer, ...]


@dataclass(frozen=True)
class Kit:
    """A Hydrogen kit: folder name and its instruments grouped by piece."""

    name: str
    folder: Path
    pieces: dict[str, tuple[Instrument, ...]]

    @property
    def is_full_kit(self) -> bool:
        """True when it can play a beat (kick, snare or clap, and some hat or ride)."""
        p = self.pieces
        return "kick" in p and ("snare" in p or "clap" in p) and any(h in p for h in ("hat_closed", "ride"))


def piece_of(name: str) -> str | None:
    """The kit piece an instrument name plays, or None when it is no usable piece."""
    lower = name.lower().strip()
    lower = re.sub(r"^[a-g]#?\d+ - ", "", lower)  # "c#3 - stick" → "stick"
    if _EXCLUDE.search(lower):
        return None
    for piece, pattern in _PIECE_RULES:
        if re.search(pattern, lower):
            return piece
    return None


def _text(element: ET.Element, tag: str, default: str = "") -> str:
    child = element.find(tag)
    return child.text.strip() if child is not None and child.text else default


def parse_kit(folder: Path) -> Kit | None:
    """Read folder/drumkit.xml; None when it is missing or unreadable."""
    xml = folder / "drumkit.xml"
    try:
        text = xml.read_text(encoding="utf-8", errors="replace")
        text = re.sub(r'\sxmlns(:\w+)?="[^"]*"', "", text)  # namespaces in the way of find()
        root = ET.fromstring(text)
    except (OSError, ET.ParseError):
        return None
    pieces: dict[str, list[Instrument]] = {}
    for inst in root.iter("instrument"):
        name = _text(inst, "name")
        piece = piece_of(name)
        if piece is None:
            continue
        layers = []
        for layer in inst.iter("layer"):
            file = _text(layer, "filename")
            if file:
                layers.append(Layer(folder / file, float(_text(layer, "min", "0")), float(_text(layer, "max", "1")),
                                    float(_text(layer, "gain", "1"))))
        direct = _text(inst, "filename")
        if not layers and direct:
            layers.append(Layer(folder / direct, 0.0, 1.0, 1.0))
        layers = [lay for lay in layers if lay.path.is_file()]
        if not layers or _text(inst, "isMuted") == "true":
            continue
        volume = float(_text(inst, "volume", "1") or 1.0)
        pieces.setdefault(piece, []).append(Instrument(name, piece, volume, tuple(layers)))
    if not pieces:
        return None
    return Kit(folder.name, folder, {k: tuple(v) for k, v in pieces.items()})


def load_kits(drumkits_dir: Path = DEFAULT_DRUMKITS_DIR) -> dict[str, Kit]:
    """Every readable kit under `drumkits_dir`, by folder name (sorted, so choices are stable)."""
    kits: dict[str, Kit] = {}
    if not drumkits_dir.is_dir():
        return kits
    for folder in sorted(p for p in drumkits_dir.iterdir() if p.is_dir()):
        kit = parse_kit(folder)
        if kit is not None:
            kits[kit.name] = kit
    return kits


_SAMPLES: dict[Path, np.ndarray] = {}


def read_sample(path: Path) -> np.ndarray:
    """A kit sample as float32 (n, 2) at 44.1 kHz (cached per process)."""
    cached = _SAMPLES.get(path)
    if cached is not None:
        return cached
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    if audio.shape[1] == 1:
        audio = np.repeat(audio, 2, axis=1)
    elif audio.shape[1] > 2:
        audio = audio[:, :2]
    if rate != SAMPLE_RATE:
        audio = soxr.resample(audio, rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
    # trim trailing near-silence so long files cost nothing
    loud = np.flatnonzero(np.abs(audio).max(axis=1) > 1e-4)
    audio = np.ascontiguousarray(audio[: loud[-1] + 1] if len(loud) else audio[:1])
    _SAMPLES[path] = audio
    return audio


class HydrogenSampler:
    """Plays `Hit`s with one kit. choices: which instrument plays a piece (index per piece)."""

    def __init__(self, kit: Kit, choices: dict[str, int], mirror: bool = False) -> None:
        self.kit = kit
        self.choices = choices
        self.mirror = mirror

    def instrument(self, piece: str) -> Instrument | None:
        """The instrument that plays `piece`, or a stand-in from FALLBACK, or None."""
        for candidate in (piece, *FALLBACK.get(piece, ())):
            options = self.kit.pieces.get(candidate)
            if options:
                return options[self.choices.get(candidate, 0) % len(options)]
        return None

    def render(self, hits: list[Hit] | tuple[Hit, ...], n_samples: int, rng: np.random.Generator) -> np.ndarray:
        """The hits as audio: float32 (n_samples, 2)."""
        out = np.zeros((n_samples, 2), dtype=np.float32)
        ordered = sorted(hits, key=lambda h: h.time_s)
        hat_times = np.array([h.time_s for h in ordered if h.piece in ("hat_closed", "hat_pedal")])
        for hit in ordered:
            inst = self.instrument(hit.piece)
            if inst is None:
                continue
            vel = hit.velocity
            layer = next((lay for lay in inst.layers if lay.min_velocity <= vel <= lay.max_velocity), None)
            if layer is None:
                layer = min(inst.layers, key=lambda lay: abs((lay.min_velocity + lay.max_velocity) / 2 - vel))
            sample = read_sample(layer.path)
            gain = inst.volume * layer.gain * vel ** 1.6 * 10 ** (rng.normal(0, 0.6) / 20)
            start = round(hit.time_s * SAMPLE_RATE)
            if start >= n_samples:
                continue
            length = min(len(sample), n_samples - start)
            if hit.piece == "hat_open" and len(hat_times):  # choked by the next closed/pedal hat
                later = hat_times[hat_times > hit.time_s + 0.02]
                if len(later):
                    length = min(length, int((later[0] - hit.time_s) * SAMPLE_RATE) + int(0.02 * SAMPLE_RATE))
            pan = PIECE_PAN.get(hit.piece, 0.0) * (-1 if self.mirror else 1)
            left, right = np.cos((pan + 1) * np.pi / 4), np.sin((pan + 1) * np.pi / 4)
            chunk = sample[:length] * np.float32(gain)
            if hit.piece == "hat_open" and length < len(sample):
                fade = min(length, int(0.02 * SAMPLE_RATE))
                chunk[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)[:, None]
            out[start:start + length, 0] += chunk[:, 0] * np.float32(left * np.sqrt(2))
            out[start:start + length, 1] += chunk[:, 1] * np.float32(right * np.sqrt(2))
        return out
