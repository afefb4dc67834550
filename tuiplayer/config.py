"""The numbers of the whole system, in one place (DESIGN.md §2).

Every module reads these from here; a model's card records the values it was trained with
and the loader refuses a model whose numbers differ.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

STEMS: tuple[str, ...] = ("vocals", "drums", "bass", "other")
"""Stem names, in the order used everywhere (arrays, files, model outputs, UI strips)."""

MODEL_SELECTIONS: tuple[str, ...] = ("mean", "weakest")
"""How training picks the validation epoch it keeps: the best mean SDR, or the weakest stem's
best margin over mixture/4 (`tuiplayer train --select`)."""


@dataclass(frozen=True)
class SignalConfig:
    """Sample rate, STFT geometry and model block size.

    sample_rate: every input is resampled to this rate for separation (Hz).
    n_fft: STFT window length in samples (Hann window).
    hop_length: STFT hop in samples (n_fft / 4 = 75 % overlap).
    n_bins: frequency bins the model sees, bins 0 … n_bins-1 (~11 kHz at 44.1 kHz).
    n_frames: STFT frames in one model block (~4.46 s).
    channels: audio channels the model sees (stereo).
    """

    sample_rate: int = 44100
    n_fft: int = 4096
    hop_length: int = 1024
    n_bins: int = 1024
    n_frames: int = 192
    channels: int = 2

    @property
    def n_freqs(self) -> int:
        """All one-sided FFT bins, n_fft // 2 + 1 (2049)."""
        return self.n_fft // 2 + 1

    @property
    def block_seconds(self) -> float:
        """Audio duration of one model block in seconds."""
        return self.n_frames * self.hop_length / self.sample_rate

    def as_dict(self) -> dict[str, int]:
        """The values a model card records (and the loader compares)."""
        return asdict(self)


SIGNAL = SignalConfig()
"""The configuration the player, the models and the tools use."""
