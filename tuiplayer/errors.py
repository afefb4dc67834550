"""One error hierarchy for the whole program.

The command line turns a `BadInput` into one line on stderr and exit code 2, any other
`TuiplayerError` into one line and exit code 1; the player shows either as a notice.
"""

from __future__ import annotations


class TuiplayerError(Exception):
    """Base of every error tuiplayer raises on purpose; its message is shown to the user."""

    exit_code = 1


class BadInput(TuiplayerError):
    """The user gave something we cannot use: a missing, corrupt or odd file, a bad option."""

    exit_code = 2


class AudioFileError(BadInput):
    """An audio file cannot be read (missing, not audio, truncated, no samples)."""


class OutputExistsError(BadInput):
    """An output file exists already and `--force` was not given."""


class OutputError(BadInput):
    """An output cannot be written where the user asked: a full disk, a read-only or missing
    folder, a file where a folder must be, a name too long."""


class ModelError(TuiplayerError):
    """A model folder or file is missing, corrupt, or was trained with other numbers."""

    exit_code = 2
