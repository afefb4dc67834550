"""Ensembles: a model version whose stems come from other model versions (DESIGN.md §5).

An ensemble is data, a card with no weights of its own, like a demucs "bag" YAML:

    "arch": "ensemble",
    "members": [{"model": "spleeter-2stems", "stems": ["vocals"]},
                {"model": "hybrid", "stems": ["drums", "bass", "other"], "input": "rest"}]

The rule that makes one set of masks of them (`combine`): members in order, each takes for its
stems the share of what the members before it left, split in proportion to its own masks
among the stems nobody has taken yet:

    left = 1;  for each member (masks m, stems S), U = stems not yet taken (S ⊆ U):
        mask_j = left · (m_j + δ) / (Σ_{k∈U} m_k + δ·|U|)   for j in S
        left  −= Σ_{j∈S} mask_j

so the first member's masks are kept as they are, the last one's sum to what is left, and the
masks sum to 1 in every bin. A member with "input": "rest" separates the magnitude the members
before it left (left · |X|, e.g. the accompaniment once a vocals model has run) instead of the
song's. Members are loaded by the same loader as any model (Keras or LiteRT).

Shapes: magnitudes (batch, n_frames, n_bins, channels); masks (batch, n_frames, n_bins,
channels, n_stems), stems last in STEMS order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tuiplayer.config import STEMS

DELTA = 1e-8
"""Keeps a member's split defined where its masks for the stems left are all zero (an even split)."""


def combine(member_masks: Sequence[tuple[np.ndarray, Sequence[str]]]) -> np.ndarray:
    """One set of masks from the members' (masks (…, n_stems), stems it produces), in order
    (the rule in the module docstring); → masks (…, n_stems) float32 summing to 1."""
    return _combine(member_masks)[0]


def _combine(member_masks: Sequence[tuple[np.ndarray, Sequence[str]]]) -> tuple[np.ndarray, np.ndarray]:
    """(masks (…, n_stems) of the stems taken so far, zero elsewhere; what is left (…, 1))."""
    first = member_masks[0][0]
    out = np.zeros(first.shape, dtype=np.float32)
    left = np.ones((*first.shape[:-1], 1), dtype=np.float32)
    untaken = list(range(len(STEMS)))
    for masks, stems in member_masks:
        taken = [STEMS.index(stem) for stem in stems]
        pool = masks[..., untaken].sum(axis=-1, keepdims=True) + np.float32(DELTA * len(untaken))
        share = (masks[..., taken] + np.float32(DELTA)) / pool
        out[..., taken] = left * share
        left = np.maximum(left - out[..., taken].sum(axis=-1, keepdims=True), 0)
        untaken = [j for j in untaken if j not in taken]
    return out, left


@dataclass
class Ensemble:
    """A loaded ensemble: ensemble(magnitudes (batch, n_frames, n_bins, 2)) → masks (batch, …, 2, n_stems).

    members: (runner, stems, input) in order; each runner follows the same contract."""

    card: Any
    members: list[tuple[Any, list[str], str]]

    def __call__(self, magnitudes: np.ndarray) -> np.ndarray:
        magnitudes = np.asarray(magnitudes, dtype=np.float32)
        results: list[tuple[np.ndarray, list[str]]] = []
        for runner, stems, source in self.members:
            if source == "rest" and results:
                left = _combine(results)[1][..., 0]  # (batch, frames, bins, channels)
                masks = runner(magnitudes * left)
            else:
                masks = runner(magnitudes)
            results.append((np.asarray(masks, dtype=np.float32), stems))
        return combine(results)



def parse_member(text: str) -> dict[str, Any]:
    """`MODEL:STEM[,STEM…][:song|rest]` → {"model", "stems", "input"}; BadInput (one line)."""
    from tuiplayer.errors import BadInput
    from tuiplayer.modelstore import ENSEMBLE_INPUTS

    parts = text.split(":")
    stems = parts[1].split(",") if len(parts) > 1 else []
    source = parts[2] if len(parts) > 2 else "song"
    if len(parts) not in (2, 3) or not parts[0] or not stems or not set(stems) <= set(STEMS) \
            or source not in ENSEMBLE_INPUTS:
        raise BadInput(f"--member {text!r}: write MODEL:STEMS[:rest], STEMS among {','.join(STEMS)} "
                       "(e.g. hybrid:drums,bass,other:rest)")
    return {"model": parts[0], "stems": stems, "input": source}


def write_ensemble(out: Path, specs: Sequence[str], *, version: str = "0.1e", force: bool = False) -> Any:
    """Write the card of an ensemble (`out/ensemble.json`, its members installed beside it) and return
    it read back. Its sha256 is the members' identity (modelstore.ensemble_identity); its
    metrics start empty (eval/bench --record measure them)."""
    import json

    from tuiplayer.config import SIGNAL
    from tuiplayer.errors import BadInput, ModelError
    from tuiplayer.files import write_text
    from tuiplayer.modelstore import ENSEMBLE_FILE, each_stem_once, ensemble_identity, read_card, resolve

    members = [parse_member(spec) for spec in specs]
    if not each_stem_once(members):
        raise BadInput(f"the members must produce each of {', '.join(STEMS)} exactly once")
    cards = [(resolve(member["model"], out.parent), member) for member in members]
    for card, _ in cards:
        if card.is_ensemble:
            raise ModelError(f"{card.name} is an ensemble itself; name single models as members")
    raw = {
        "name": out.name, "version": version, "arch": "ensemble", "stems": list(STEMS),
        "signal": SIGNAL.as_dict(), "parameters": sum(card.parameters for card, _ in cards),
        "sha256": ensemble_identity(cards), "members": members,
        "in_other": [stem for card, member in cards for stem in member["stems"] if stem in card.in_other],
        "provenance": {card.name: {"version": card.version, "sha256": card.sha256,
                                   **({"source": card.provenance["source"], "licence": card.provenance["licence"]}
                                      if "source" in card.provenance else {"source": "trained by tuiplayer train"})}
                       for card, _ in cards},
        "training": {"data": ["none of its own: its members' (see their cards)"]},
        "metrics": {},
    }
    write_text(Path(out) / ENSEMBLE_FILE, json.dumps(raw, indent=2) + "\n", force=force)
    return read_card(Path(out))
