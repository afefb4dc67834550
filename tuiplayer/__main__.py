"""`python -m tuiplayer` is the `tuiplayer` command."""

from tuiplayer.cli import entry

if __name__ == "__main__":  # not when a spawned worker process imports this module
    entry()
