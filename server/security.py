"""Who may talk to the server: loopback only, unless CURVE keys say otherwise.

The server runs models on the user's GPU and writes files: on a network it must not be open to
anyone. So a bind to anything but loopback (127.0.0.0/8, localhost, ::1, ipc://, inproc://) refuses to
start unless a CURVE key directory holds the server's key pair and the public keys of the clients
allowed in; then libzmq encrypts the connection and a ZAP authenticator rejects unknown keys.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import zmq.auth

from .config import CurveServerKeys


class SecurityError(Exception):
    """The configuration would expose the server, or the keys are unusable (exit code 2)."""


def bind_host(address: str) -> tuple[str, str]:
    """(scheme, host) of a zmq endpoint, brackets stripped from IPv6 hosts."""
    scheme, _, rest = address.partition("://")
    host = rest.rsplit(":", 1)[0] if ":" in rest else rest
    return scheme, host.strip("[]")


def is_loopback(address: str) -> bool:
    scheme, host = bind_host(address)
    if scheme in ("ipc", "inproc"):
        return True
    if scheme != "tcp":
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # "*", an interface name, a host name: not provably loopback
        return False


def load_server_keys(directory: str | Path) -> CurveServerKeys:
    """Server keys from a directory made by `strata-server keys` (server.key_secret + authorized_clients/)."""
    d = Path(directory)
    secret_file = d / "server.key_secret"
    if not secret_file.exists():
        raise SecurityError(f"{secret_file} not found; create keys with `strata-server keys --out {d}`")
    public, secret = zmq.auth.load_certificate(secret_file)
    if not secret:
        raise SecurityError(f"{secret_file} holds no secret key")
    authorized = d / "authorized_clients"
    if not authorized.is_dir() or not any(authorized.glob("*.key")):
        raise SecurityError(f"no authorized client keys in {authorized}: nobody could connect; "
                            f"add one with `strata-server keys --out {d} --client NAME`")
    return CurveServerKeys(public, secret, authorized)


def check_bind(address: str, curve: CurveServerKeys | None) -> None:
    if curve is None and not is_loopback(address):
        raise SecurityError(
            f"refusing to bind {address}: it is not a loopback address, and without CURVE keys anyone who can "
            f"reach this machine could run jobs on it. Bind tcp://127.0.0.1:PORT, or create keys with "
            f"`strata-server keys --out DIR` and start with --curve-dir DIR")
