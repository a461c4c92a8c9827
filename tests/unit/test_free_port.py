"""Ports for test and benchmark meshes: free, distinct, and never ones the kernel could hand
to an outgoing connection."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from localmesh.launcher import free_port

RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def test_ports_are_distinct_and_can_be_bound() -> None:
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    for port in ports[:5]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("0.0.0.0", port))


@pytest.mark.skipif(not RANGE_FILE.exists(), reason="the ephemeral range is read on Linux")
def test_ports_lie_below_the_ephemeral_range() -> None:
    low = int(RANGE_FILE.read_text().split()[0])
    assert all(1024 <= free_port() < low for _ in range(50))
