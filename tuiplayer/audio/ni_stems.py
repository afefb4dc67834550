"""Native Instruments Stems files (`.stem.mp4`), which Traktor, Mixxx and `stempeg` read.

The layout, as NI's Stem Creator and stempeg's NIStemsWriter write it: one MP4 with five AAC
tracks — the mix, then drums, bass, other, vocals (NI's order, not ours) — of which only the
first is enabled, so a player that knows nothing of stems plays the mix; and in `moov/udta` a
`stem` box whose payload is NI's JSON (each stem's name and colour, the mastering DSP off).

ffmpeg encodes the tracks (its own AAC encoder, 256 kbit/s a track, at 44.1 kHz) from one
10-channel stream on its standard input; the `stem` box is then added here (ffmpeg has no way
to write it, and gpac's MP4Box, which stempeg uses for it, is not in Debian). ffmpeg writes
`moov` after the media data, so growing `moov` moves no sample: no chunk offset changes.
The file is written atomically (files.atomic_write).
"""

from __future__ import annotations

import json
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from tuiplayer.config import SIGNAL
from tuiplayer.errors import OutputError
from tuiplayer.files import atomic_write

NI_ORDER = ("drums", "bass", "other", "vocals")
"""The stems' order in the file, after the mix (track 1)."""

NI_COLOURS = {"drums": "#009E73", "bass": "#D55E00", "other": "#CC79A7", "vocals": "#56B4E9"}
"""Each stem's colour in DJ software (NI's defaults, as stempeg writes them)."""

BITRATE = "256k"
"""AAC bit rate of each (stereo) track."""

SUFFIX = ".stem.mp4"


def metadata() -> dict[str, object]:
    """NI's stem metadata for our four stems (mastering DSP off: the stems sum to the mix)."""
    return {
        "mastering_dsp": {
            "compressor": {"enabled": False, "input_gain": 0.5, "output_gain": 0.5, "threshold": 0,
                           "dry_wet": 50, "attack": 0.003, "release": 0.3, "ratio": 3, "hp_cutoff": 300},
            "limiter": {"enabled": False, "threshold": 0, "ceiling": -0.35, "release": 0.05},
        },
        "version": 1,
        "stems": [{"name": name, "color": NI_COLOURS[name]} for name in NI_ORDER],
    }


def write_ni_stems(path: Path, mix: np.ndarray, stems: dict[str, np.ndarray], *, force: bool = False) -> Path:
    """Write `path` (…`.stem.mp4`): mix and stems[name] for name in NI_ORDER, each (n, 2)
    float32 at SIGNAL.sample_rate. OutputError (one line) when ffmpeg cannot write it;
    OutputExistsError without force when path exists."""
    tracks = [mix, *(stems[name] for name in NI_ORDER)]
    interleaved = np.ascontiguousarray(np.concatenate(tracks, axis=1), dtype="<f4")  # (n, 10)
    pan = ";".join(f"[0:a]pan=stereo|c0=c{2 * i}|c1=c{2 * i + 1}[t{i}]" for i in range(len(tracks)))
    with tempfile.TemporaryDirectory(prefix="tuiplayer-stems-") as folder:
        encoded = Path(folder) / "stems.mp4"
        command = ["ffmpeg", "-v", "error", "-nostdin", "-f", "f32le", "-ar", str(SIGNAL.sample_rate),
                   "-ac", str(2 * len(tracks)), "-i", "pipe:0", "-filter_complex", pan,
                   *(arg for i in range(len(tracks)) for arg in ("-map", f"[t{i}]")),
                   "-c:a", "aac", "-b:a", BITRATE, "-brand", "M4A ", "-map_metadata", "-1",
                   "-f", "mp4", str(encoded)]
        try:
            run = subprocess.run(command, input=interleaved.tobytes(), capture_output=True, check=False)
        except OSError as error:
            raise OutputError(f"{path}: cannot run ffmpeg to write a stems file ({error.strerror or error})") from None
        if run.returncode != 0:
            said = run.stderr.decode(errors="replace").strip().splitlines()
            reason = said[-1] if said else f"exit code {run.returncode}"
            raise OutputError(f"{path}: ffmpeg could not write the stems file ({reason})")
        data = with_udta_box(encoded.read_bytes(), b"stem", json.dumps(metadata()).encode())
    return atomic_write(path, lambda handle: handle.write(data), force=force)


def _boxes(data: bytes, start: int, stop: int) -> Iterator[tuple[bytes, int, int]]:
    """The MP4 boxes in data[start:stop]: (type, offset, size)."""
    at = start
    while at + 8 <= stop:
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        if size == 1:
            size = struct.unpack(">Q", data[at + 8 : at + 16])[0]
        elif size == 0:
            size = stop - at
        if size < 8 or at + size > stop:
            raise ValueError(f"a damaged MP4 box {kind!r} at byte {at}")
        yield kind, at, size
        at += size


def _grow(data: bytearray, offset: int, by: int) -> None:
    """Add `by` to the 32-bit size of the box at offset."""
    (size,) = struct.unpack(">I", data[offset : offset + 4])
    if size in (0, 1):
        raise ValueError("a box with a 64-bit or open size cannot be grown here")
    data[offset : offset + 4] = struct.pack(">I", size + by)


def with_udta_box(mp4: bytes, kind: bytes, payload: bytes) -> bytes:
    """mp4 with a box `kind` holding payload added to moov/udta (udta made when missing).
    moov must come after the media data (ffmpeg's default), so no sample moves."""
    top = list(_boxes(mp4, 0, len(mp4)))
    moov = next((box for box in top if box[0] == b"moov"), None)
    if moov is None or any(box[0] == b"mdat" and box[1] > moov[1] for box in top):
        raise ValueError("the MP4 has no moov box after its media data")
    box = struct.pack(">I4s", 8 + len(payload), kind) + payload
    data = bytearray(mp4)
    udta = next((child for child in _boxes(mp4, moov[1] + 8, moov[1] + moov[2]) if child[0] == b"udta"), None)
    if udta is None:
        box = struct.pack(">I4s", 8 + len(box), b"udta") + box
        at = moov[1] + moov[2]
    else:
        at = udta[1] + udta[2]
        _grow(data, udta[1], len(box))
    _grow(data, moov[1], len(box))
    data[at:at] = box
    return bytes(data)
