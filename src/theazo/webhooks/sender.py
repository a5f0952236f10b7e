"""One webhook attempt over HTTP, safe against the receiver and against DNS.

* The destination is checked again now (``urls.check_destination``): a host that resolved to
  a public address at submit may resolve to a private one today (DNS rebinding).
* The request goes to the address that was checked, not to a second lookup: the URL's host is
  replaced by that IP, the ``Host`` header keeps the name, and for https the TLS handshake
  still sends and verifies the name (httpcore's ``sni_hostname`` request extension). Without
  keep-alive, a connection made for one name is never reused for another on the same IP.
* No redirects are followed, no proxy from the environment is used, and the whole attempt
  (resolution, connection, answer) has one deadline. Only the first
  ``WEBHOOK_MAX_RESPONSE_BYTES`` of an answer are read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import httpx

from theazo import __version__
from theazo.core import defaults
from theazo.core.addresses import IPAddress
from theazo.core.errors import InvalidField
from theazo.webhooks import urls

USER_AGENT = f"theazo-webhooks/{__version__}"


@dataclass(frozen=True, slots=True)
class Answer:
    """What one attempt got: an HTTP status, or why none came."""

    http_status: int | None = None
    error: str | None = None
    body: str | None = None  # the start of the answer, for debugging

    @property
    def delivered(self) -> bool:
        return self.http_status is not None and 200 <= self.http_status < 300


class Sender:
    def __init__(
        self,
        timeout_seconds: float = defaults.WEBHOOK_TIMEOUT_SECONDS,
        *,
        allow_private: bool = False,
        max_connections: int = defaults.WEBHOOK_CONCURRENCY,
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self.allow_private = allow_private
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds),
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=0),
            headers={
                "User-Agent": USER_AGENT,
                "Content-Type": "application/json",
                "Accept-Encoding": "identity",  # the bytes read are the bytes counted
            },
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(self, url: str, headers: Mapping[str, str], body: bytes) -> Answer:
        """POST ``body`` to ``url``; never raises for anything the receiver or DNS does."""
        deadline = asyncio.get_running_loop().time() + self.timeout_seconds
        try:
            async with asyncio.timeout_at(deadline):
                addresses = await urls.check_destination(url, allow_private=self.allow_private)
                response = await self._post(url, addresses, headers, body)
        except (TimeoutError, httpx.TimeoutException):
            return Answer(error=f"no answer within {self.timeout_seconds:g}s")
        except urls.ForbiddenAddress as exc:
            return Answer(error=str(exc))
        except InvalidField as exc:
            return Answer(error=exc.detail)
        except httpx.ConnectError as exc:
            return Answer(error=str(exc))
        except httpx.HTTPError as exc:
            return Answer(error=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        except (OSError, UnicodeError) as exc:
            return Answer(error=f"the webhook host does not resolve: {exc}")
        text = await _read_start(response, deadline)
        return Answer(response.status_code, _status_error(response), text)

    async def _post(
        self,
        url: str,
        addresses: Sequence[IPAddress],
        headers: Mapping[str, str],
        body: bytes,
    ) -> httpx.Response:
        """Try each checked address in turn until one accepts the connection."""
        target = httpx.URL(url)
        failures: list[str] = []
        for address in dict.fromkeys(addresses):
            request = self.pinned_request(target, address, headers, body)
            try:
                return await self._http.send(request, stream=True)
            except httpx.ConnectError as exc:
                failures.append(f"{address}: {exc or 'refused'}")
        raise httpx.ConnectError("cannot connect to " + ("; ".join(failures) or target.host))

    def pinned_request(
        self, target: httpx.URL, address: IPAddress, headers: Mapping[str, str], body: bytes
    ) -> httpx.Request:
        """A POST to ``address`` that still names ``target``'s host (Host header, TLS)."""
        extensions = {}
        if target.scheme == "https":
            extensions["sni_hostname"] = target.raw_host.decode("ascii")
        return self._http.build_request(
            "POST",
            target.copy_with(host=str(address)),
            headers={**headers, "Host": target.netloc.decode("ascii")},
            content=body,
            extensions=extensions,
        )


async def _read_start(response: httpx.Response, deadline: float) -> str | None:
    """The first bytes of the answer, as text; whatever fails here does not undo its status."""
    limit = defaults.WEBHOOK_MAX_RESPONSE_BYTES
    start = bytearray()
    try:
        async with asyncio.timeout_at(deadline):
            async for chunk in response.aiter_raw():
                start += chunk[: limit - len(start)]
                if len(start) >= limit:
                    break
    except (TimeoutError, httpx.HTTPError):
        pass
    finally:
        await response.aclose()
    return start.decode(errors="replace") or None


def _status_error(response: httpx.Response) -> str | None:
    if response.is_redirect:
        return f"redirects are not followed (to {response.headers.get('location', '?')})"
    return None
