"""`python -m tuiplayer` is the `tuiplayer` command."""

from tuiplayer.cli import entry

entry()
