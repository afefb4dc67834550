"""tuiplayer: a terminal music player that splits songs into stems and remixes them live."""

__version__ = "0.1.0"
