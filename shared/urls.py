"""The SSRF guard for every URL the server fetches or posts to on a user's behalf.

Webhook deliveries and `cloud_storage_url`/`source_url` media downloads both go through
`check_url`: http(s) only, and unless `allow_private_urls` is set, a host where *any*
resolved address is loopback, private, link-local, multicast, reserved, unspecified or
otherwise non-global is refused. The caller then connects to the checked address
(`Target.pinned_url()` plus `Target.request_extensions()`), so a DNS answer that changes
between check and connect (DNS rebinding) cannot send the request elsewhere; TLS still
verifies the certificate for the host name. Redirects are never followed blindly: each hop
is a new URL to check.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

import httpx

DNS_TIMEOUT_S = 5.0  # resolving happens in request paths: never hang them on slow DNS

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UrlRefused(ValueError):
    """The URL is not one we connect to. The message says why, for users."""


class UrlInvalid(UrlRefused):
    """The URL itself is malformed or not http(s) (as opposed to pointing somewhere refused)."""


class UrlUnresolvable(ValueError):
    """The hostname did not resolve (possibly a transient DNS failure)."""


@dataclass(frozen=True)
class Target:
    """A checked URL and the address it resolved to."""

    url: httpx.URL
    address: IPAddress

    def pinned_url(self) -> httpx.URL:
        return self.url.copy_with(host=str(self.address))

    def request_headers(self) -> dict[str, str]:
        """The Host header the pinned request must carry (the URL's own host)."""
        return {"host": self.url.netloc.decode("ascii")}

    def request_extensions(self) -> dict[str, Any]:
        """httpx extensions so TLS uses (and verifies) the URL's host name, not the address."""
        return {"sni_hostname": self.url.host} if self.url.scheme == "https" else {}


def refused_reason(address: IPAddress) -> str | None:
    """Why `address` is not a public target ("loopback", "private", ...), or None."""
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    for attribute in ("is_loopback", "is_private", "is_link_local", "is_multicast", "is_reserved", "is_unspecified"):
        if getattr(address, attribute):
            return attribute.removeprefix("is_").replace("_", "-")
    if not address.is_global:  # e.g. 100.64.0.0/10, shared carrier-grade NAT space
        return "non-global"
    return None


def parse_url(url: str, *, allow_credentials: bool = False) -> httpx.URL:
    """Syntax only: an absolute http(s) URL with a host (and, unless allowed, no credentials)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise UrlInvalid(f"not a valid URL: {exc}") from exc
    if parsed.scheme not in ("http", "https"):
        raise UrlInvalid(f"the URL scheme must be http or https, not {parsed.scheme or 'missing'!r}")
    if not parsed.host:
        raise UrlInvalid("the URL has no host")
    if parsed.userinfo and not allow_credentials:
        raise UrlInvalid("the URL must not contain credentials; authenticate with the signature instead")
    return parsed


async def resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await asyncio.wait_for(asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM), DNS_TIMEOUT_S)
    except (socket.gaierror, UnicodeError) as exc:
        raise UrlUnresolvable(f"the host {host!r} does not resolve: {exc}") from exc
    except TimeoutError as exc:
        raise UrlUnresolvable(f"resolving the host {host!r} timed out after {DNS_TIMEOUT_S:.0f} s") from exc
    # Drop an IPv6 zone id ("fe80::1%eth0"); the address itself is what is checked.
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addresses:
        raise UrlUnresolvable(f"the host {host!r} has no addresses")
    return list(dict.fromkeys(addresses))


async def check_url(
    url: str | httpx.URL, *, allow_private: bool, what: str = "webhook URLs", allow_credentials: bool = False
) -> Target:
    """The URL's target if we may connect to it; raises UrlRefused (UrlInvalid) or UrlUnresolvable.

    `what` names the URLs in the refusal message ("webhook URLs must be public").
    """
    parsed = parse_url(str(url), allow_credentials=allow_credentials)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    addresses = await resolve(parsed.host, port)
    if not allow_private:
        for address in addresses:  # every address: a client could connect to any of them
            reason = refused_reason(address)
            if reason is not None:
                raise UrlRefused(
                    f"{parsed.host} resolves to {address}, a {reason} address; {what} must be public "
                    "(set DALSTON_ALLOW_PRIVATE_URLS=true to allow private targets)"
                )
    return Target(parsed, addresses[0])
