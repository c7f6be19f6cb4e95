"""Webhook URL validation: which targets we refuse, and why."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from shared.webhooks import UrlRefused, UrlUnresolvable, check_url


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://127.8.9.10:8080/hook",
        "http://10.1.2.3/hook",
        "http://172.16.0.5/hook",
        "http://192.168.1.10/hook",
        "http://169.254.169.254/latest/meta-data",  # cloud metadata
        "http://100.64.0.1/hook",  # carrier-grade NAT
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",  # multicast
        "http://240.0.0.1/hook",  # reserved
        "http://[::1]/hook",
        "http://[fe80::1]/hook",
        "http://[fc00::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped loopback
        "http://[ff02::1]/hook",
        "http://localhost:9000/hook",  # a name that resolves to loopback
    ],
)
async def test_private_targets_are_refused(url: str) -> None:
    with pytest.raises(UrlRefused, match="webhook URLs must be public"):
        await check_url(url, allow_private=False)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9000/hook", "http://[::1]/hook", "http://localhost/x", "http://10.0.0.1/"])
async def test_private_targets_are_allowed_by_the_setting(url: str) -> None:
    target = await check_url(url, allow_private=True)
    assert not target.address.is_global


async def test_public_address_is_accepted_and_pinned() -> None:
    target = await check_url("https://93.184.216.34:8443/path?q=1", allow_private=False)
    assert target.address == ipaddress.ip_address("93.184.216.34")
    assert str(target.pinned_url()) == "https://93.184.216.34:8443/path?q=1"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/hook", "scheme must be http or https"),
        ("file:///etc/passwd", "scheme must be http or https"),
        ("example.com/hook", "scheme must be http or https"),
        ("http:///hook", "no host"),
        ("https://user:pass@example.com/hook", "credentials"),
    ],
)
async def test_malformed_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(UrlRefused, match=message):
        await check_url(url, allow_private=True)


async def test_unresolvable_host() -> None:
    with pytest.raises(UrlUnresolvable, match="does not resolve"):
        await check_url("http://no-such-host.invalid/hook", allow_private=False)


def _fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> None:
    """Answer getaddrinfo for made-up names (this machine has no DNS for them)."""
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in answers:
            family = lambda a: socket.AF_INET6 if ":" in a else socket.AF_INET  # noqa: E731
            return [(family(a), socket.SOCK_STREAM, 6, "", (a, port)) for a in answers[host]]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


async def test_hostname_resolving_to_private_address_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_dns(monkeypatch, {"hooks.internal.example": ["10.20.30.40"], "rebind.example": ["8.8.8.8", "192.168.0.1"]})
    with pytest.raises(UrlRefused, match="10.20.30.40, a private address"):
        await check_url("https://hooks.internal.example/x", allow_private=False)
    # Every address counts: one private answer among public ones refuses the URL.
    with pytest.raises(UrlRefused, match="192.168.0.1"):
        await check_url("https://rebind.example/x", allow_private=False)


async def test_hostname_resolving_to_public_address_is_pinned_to_it(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_dns(monkeypatch, {"hooks.example.com": ["8.8.4.4"]})
    target = await check_url("https://hooks.example.com/x", allow_private=False)
    assert target.url.host == "hooks.example.com"
    assert str(target.pinned_url()) == "https://8.8.4.4/x"
