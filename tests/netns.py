"""Hosts for multi-host tests: network namespaces on one bridge.

Each host is a namespace with one veth (`eth0`) whose peer sits on a bridge in the root
namespace, so hosts reach each other and the test (in the root namespace) reaches every
host by its IP; taking a host's `eth0` down cuts it off from all of them. Names and the
subnet are unique per test process. Needs root (CAP_NET_ADMIN); `Network.create` raises
OSError or CalledProcessError where that is missing.

    with Network("a", "b") as net:
        Service("redis", net["a"].argv(["redis-server", "--bind", net["a"].ip]))
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

IFACE = "eth0"  # every host's interface, inside its namespace


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@dataclass(frozen=True)
class Host:
    netns: str
    ip: str

    def argv(self, argv: Sequence[str]) -> list[str]:
        """`argv` run inside this host (`ip netns exec` execs it: the pid and signals are its own)."""
        return ["ip", "netns", "exec", self.netns, *argv]

    def link(self, up: bool) -> None:
        """Connect or cut this host's network (its address and routes come back with the link)."""
        ip("-n", self.netns, "link", "set", IFACE, "up" if up else "down")


class Network:
    def __init__(self, *names: str) -> None:
        pid = os.getpid()
        self.bridge = f"dlbr{pid}"
        self.subnet = f"10.213.{pid % 250}"
        self.gateway_ip = f"{self.subnet}.1"  # the bridge's: the root namespace's address on it
        self.hosts = {name: Host(f"dlst-{name}-{pid}", f"{self.subnet}.{i + 2}") for i, name in enumerate(names)}
        self._veths = {name: f"dl{name}{pid}"[:15] for name in names}

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    def create(self) -> None:
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{self.gateway_ip}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        for name, host in self.hosts.items():
            ip("netns", "add", host.netns)
            ip("link", "add", self._veths[name], "type", "veth", "peer", "name", IFACE, "netns", host.netns)
            ip("link", "set", self._veths[name], "master", self.bridge, "up")
            ip("-n", host.netns, "addr", "add", f"{host.ip}/24", "dev", IFACE)
            ip("-n", host.netns, "link", "set", "lo", "up")
            host.link(True)

    def destroy(self) -> None:
        """Remove whatever `create` made, even half of it (each step on its own)."""
        for name, host in self.hosts.items():
            for args in (("link", "del", self._veths[name]), ("netns", "del", host.netns)):
                try:
                    ip(*args)
                except subprocess.CalledProcessError:
                    pass  # never made, or gone with its namespace
        try:
            ip("link", "del", self.bridge)
        except subprocess.CalledProcessError:
            pass

    def __enter__(self) -> Network:
        try:
            self.create()
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()


def wait_tcp(host: str, port: int, timeout: float = 60.0) -> None:
    """Wait until something accepts connections on host:port."""
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as s:
            s.settimeout(1.0)
            if s.connect_ex((host, port)) == 0:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")
        time.sleep(0.1)
