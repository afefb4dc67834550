"""Is the sound server that PULSE_SERVER names reachable? (`tuiplayer audio`; over SSH the
server is usually the user's own machine, forwarded with `ssh -R`.)

PULSE_SERVER holds one or more addresses (space-separated, tried in order), each
`unix:/path`, `tcp:host[:port]`, `tcp6:…`, a bare `/path` or a bare host (port 4713), possibly
prefixed `{machine-id}`.
"""

from __future__ import annotations

import os
import socket

DEFAULT_PORT = 4713
TIMEOUT_S = 2.0


def _address(entry: str) -> tuple[int, object] | None:
    """(socket family, address) of one PULSE_SERVER entry, or None if unusable."""
    if entry.startswith("{"):
        entry = entry.split("}", 1)[-1]
    if entry.startswith("unix:"):
        return socket.AF_UNIX, entry[5:]
    if entry.startswith("/"):
        return socket.AF_UNIX, entry
    family = socket.AF_INET6 if entry.startswith("tcp6:") else socket.AF_INET
    entry = entry.split(":", 1)[1] if entry.startswith(("tcp:", "tcp6:", "tcp4:")) else entry
    if entry.startswith("["):  # [v6]:port
        host, _, port = entry[1:].partition("]")
        port = port.lstrip(":")
    else:
        host, _, port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
    try:
        return family, (host, int(port) if port else DEFAULT_PORT)
    except ValueError:
        return None


def reachable(server: str | None = None) -> tuple[bool, str]:
    """(whether a connection opens, one line saying to what or why not) for PULSE_SERVER."""
    server = server if server is not None else os.environ.get("PULSE_SERVER", "")
    if not server.strip():
        return False, "PULSE_SERVER is not set (the local sound system is used)"
    reasons = []
    for entry in server.split():
        address = _address(entry)
        if address is None:
            reasons.append(f"{entry}: not an address")
            continue
        family, target = address
        try:
            with socket.socket(family, socket.SOCK_STREAM) as connection:
                connection.settimeout(TIMEOUT_S)
                connection.connect(target)  # type: ignore[arg-type]
            return True, f"PULSE_SERVER={server}: {entry} answers"
        except OSError as error:
            reasons.append(f"{entry}: {error.strerror or error}")
    return False, f"PULSE_SERVER={server}: not reachable ({'; '.join(reasons)})"
