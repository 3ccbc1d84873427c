"""Reading what Flink's Prometheus reporters serve, and finding ports for a reporter range."""

import contextlib
import re
import socket
import urllib.request

from jobs.local.processes import free_ports

__all__ = ["free_port_pair", "scrape", "series_sum"]


def free_port_pair() -> int:
    """A port P with P and P + 1 free on 127.0.0.1, for a reporter range ``P-(P+1)`` (two JVMs on one host)."""
    for _ in range(50):
        first, = free_ports(1)
        with contextlib.suppress(OSError), socket.socket() as probe:
            probe.bind(("127.0.0.1", first + 1))
            return first
    raise AssertionError("no two consecutive free ports on 127.0.0.1")


def scrape(*ports: int) -> str:
    """What the reporters on ``ports`` of 127.0.0.1 serve at ``/metrics``, joined; nothing from one not answering."""
    texts = []
    for port in ports:
        with contextlib.suppress(OSError), urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as got:
            texts.append(got.read().decode())
    return "".join(texts)


def series_sum(text: str, name: str) -> float:
    """The sum of every sample of the series ``name`` in a Prometheus text exposition."""
    pattern = re.compile(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", re.MULTILINE)
    return sum(float(value) for value in pattern.findall(text))
