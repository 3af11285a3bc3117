"""The asyncio load client (aiohttp) for the stateful scenarios: code redemption, refresh chains
and complete code flows, and the logins and codes they need beforehand.

``measure`` runs one coroutine per connection for warm-up + duration and counts what completes
inside the measured window; it also samples the server's CPU time at the window's edges.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import math
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import aiohttp

from benchmarks.servers import REDIRECT_URI, Target, cpu_seconds

SCOPE = "openid profile phone"
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=30)
SMS_WAIT = 15.0  # seconds for a login code to reach the outbox
MAX_HOPS = 8
WARM_WAIT = 120.0  # seconds the window waits for every connection's first call
SLOW_CALLS = 4  # the window is at least this many times the longest warm-up call


class LoadError(RuntimeError):
    """A response that is not what a working provider answers."""


class Exhausted(Exception):  # noqa: N818 (a condition, not an error)
    """The pre-made codes of the token scenario ran out before the window ended."""


# --- the provider's side of a browser ----------------------------------------------------------


class Outbox:
    """The SMS outbox file (one JSON object per line), read incrementally: phone -> last code."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.codes: dict[str, str] = {}

    def _read(self) -> None:
        if not self.path.exists():
            return
        with self.path.open("rb") as file:
            file.seek(self.offset)
            chunk = file.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self.offset += len(complete)
        for line in complete.decode().splitlines():
            record = json.loads(line)
            if record.get("purpose") == "login":
                self.codes[record["phone"]] = str(record["code"])

    def take(self, phone: str) -> str | None:
        """The phone's login code once it has arrived, each code once."""
        self._read()
        return self.codes.pop(phone, None)

    async def code_for(self, phone: str) -> str:
        deadline = time.monotonic() + SMS_WAIT
        while time.monotonic() < deadline:
            if (code := self.take(phone)) is not None:
                return code
            await asyncio.sleep(0.01)
        raise LoadError(f"no login code for {phone} in {self.path}")


@dataclass
class Pkce:
    verifier: str = field(default_factory=lambda: secrets.token_urlsafe(48))

    @property
    def challenge(self) -> str:
        digest = hashlib.sha256(self.verifier.encode()).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorization_params(client_id: str, pkce: Pkce, state: str) -> dict[str, str]:
    """A code flow's authorization request, with PKCE, as the relying party sends it."""
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": SCOPE,
        "state": state,
        "nonce": secrets.token_urlsafe(8),
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
    }


@dataclass
class Minted:
    code: str
    verifier: str


class Client:
    """The relying party and its browsers against one target."""

    def __init__(self, target: Target, endpoints: dict[str, str], connections: int) -> None:
        self.target = target
        self.endpoints = endpoints
        self.outbox = Outbox(target.outbox)
        self.auth = aiohttp.BasicAuth(target.client_id, target.client_secret)
        self.connector = aiohttp.TCPConnector(limit=connections * 2)
        self.http = self.browser()  # the relying party's back end (no cookies)

    def browser(self) -> aiohttp.ClientSession:
        """A browser of its own (cookie jar) over the shared connections."""
        return aiohttp.ClientSession(
            connector=self.connector,
            connector_owner=False,
            cookie_jar=aiohttp.CookieJar(unsafe=True),  # unsafe: allows cookies of 127.0.0.1
            timeout=HTTP_TIMEOUT,
        )

    async def close(self) -> None:
        await self.http.close()
        await self.connector.close()

    # --- authorization ----------------------------------------------------------------------

    async def authorize(
        self, browser: aiohttp.ClientSession
    ) -> tuple[aiohttp.ClientResponse, str, Pkce]:
        pkce = Pkce()
        state = secrets.token_urlsafe(8)
        params = authorization_params(self.target.client_id, pkce, state)
        url = f"{self.endpoints['authorization_endpoint']}?{urlencode(params)}"
        response = await browser.get(url, allow_redirects=False)
        await response.read()
        return response, state, pkce

    async def follow(
        self, browser: aiohttp.ClientSession, response: aiohttp.ClientResponse, state: str
    ) -> str | aiohttp.ClientResponse:
        """Follow redirects inside the provider: the code when one reaches the client, else the
        page where they stop (the login form)."""
        for _hop in range(MAX_HOPS):
            location = response.headers.get("Location", "")
            if response.status not in (302, 303) or not location:
                return response
            if location.startswith(REDIRECT_URI):
                query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
                if query.get("state") != state or "code" not in query:
                    raise LoadError(f"bad authorization response: {location[:300]}")
                return query["code"]
            response = await browser.get(
                urljoin(str(response.url), location), allow_redirects=False
            )
            await response.read()
        raise LoadError("too many redirects")

    async def mint(self, browser: aiohttp.ClientSession) -> Minted:
        """A code for a browser that is logged in: /authorize straight back to the client."""
        response, state, pkce = await self.authorize(browser)
        code = await self.follow(browser, response, state)
        if not isinstance(code, str):
            raise LoadError(f"authorize asked for a login again: {code.status} {code.url}")
        return Minted(code, pkce.verifier)

    async def log_in(self, browser: aiohttp.ClientSession) -> Minted:
        """A complete code flow up to the code: /authorize, the login page, 发送验证码, the code
        from the SMS outbox, phone + password + code, back through /authorize."""
        response, state, pkce = await self.authorize(browser)
        page = await self.follow(browser, response, state)
        if isinstance(page, str) or page.status != 200:
            raise LoadError(f"authorize did not lead to a login page: {page}")
        phone = self.target.new_phone()
        html = await page.text()
        form = {"phone": phone, "password": self.target.password}
        if self.target.dialect == "ours":
            interaction = parse_qs(urlsplit(str(page.url)).query)["interaction"][0]
            token = csrf_token(html)
            sms_url, login_url = self.url("/login/sms-code"), self.url("/login")
            form |= {"csrf_token": token, "interaction": interaction}
            sms_form = {"phone": phone, "csrf_token": token}
        else:
            sms_url, login_url = f"{page.url}/sms-code", f"{page.url}/login"
            sms_form = {"phone": phone}
        sent = await browser.post(sms_url, data=sms_form)
        if sent.status != 200:
            raise LoadError(f"SMS code request: {sent.status} {(await sent.text())[:300]}")
        await sent.read()
        form["sms_code"] = await self.outbox.code_for(phone)
        done = await browser.post(login_url, data=form, allow_redirects=False)
        await done.read()
        code = await self.follow(browser, done, state)
        if not isinstance(code, str):
            raise LoadError(f"login failed: {code.status} {(await code.text())[:300]}")
        return Minted(code, pkce.verifier)

    def url(self, path: str) -> str:
        return self.target.base + path

    # --- the relying party's back end -------------------------------------------------------

    async def token(self, data: dict[str, str], *, want: set[str]) -> dict[str, Any]:
        response = await self.http.post(self.endpoints["token_endpoint"], data=data, auth=self.auth)
        body = await response.read()
        if response.status != 200:
            raise LoadError(f"token endpoint: {response.status} {body[:300]!r}")
        tokens: dict[str, Any] = json.loads(body)
        if not want <= set(tokens):
            raise LoadError(f"token response without {sorted(want - set(tokens))}")
        return tokens

    async def redeem(self, minted: Minted) -> dict[str, Any]:
        data = {
            "grant_type": "authorization_code",
            "code": minted.code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": minted.verifier,
        }
        return await self.token(data, want={"access_token", "refresh_token", "id_token"})

    async def refresh(self, refresh_token: str) -> str:
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        tokens = await self.token(data, want={"access_token", "refresh_token"})
        if tokens["refresh_token"] == refresh_token:
            raise LoadError("the refresh token was not rotated")
        return str(tokens["refresh_token"])


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html
    )
    if not match:
        raise LoadError(f"no csrf_token in the login page: {html[:300]!r}")
    return match.group(1)


# --- measurement -------------------------------------------------------------------------------


@dataclass
class Window:
    """What completed inside the measured window."""

    seconds: float
    latencies: list[float]  # seconds, successful requests (or flows)
    errors: int
    cpu_seconds: float
    samples: list[str]


async def measure(
    target: Target,
    one: Callable[[int], Awaitable[None]],
    *,
    connections: int,
    warmup: float,
    duration: float,
) -> Window:
    """Call ``one(connection)`` in a loop on every connection; count the calls that end inside
    the window of ``duration`` seconds. The window opens after ``warmup`` seconds, and not
    before every connection has finished one call: connections all start at once, and slow
    calls (a complete flow) would otherwise all end together. The window lasts ``duration``, or
    ``SLOW_CALLS`` times the longest warm-up call when that is longer, so that calls slower than
    the window are still counted in proportion. ``Exhausted`` ends it early."""
    done: list[tuple[float, float, str | None]] = []  # start, end, problem
    window = {"begin": math.inf, "end": math.inf}
    cpu: dict[str, float] = {}
    warm: set[int] = set()
    all_warm = asyncio.Event()
    stopped = asyncio.Event()

    def edge(name: str) -> None:
        window[name] = time.perf_counter()
        cpu[name] = cpu_seconds(target.pids())

    async def clock() -> None:
        await asyncio.sleep(warmup)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_warm.wait(), WARM_WAIT)
        edge("begin")
        longest = max((end - began for began, end, _problem in done), default=0.0)
        await asyncio.sleep(max(duration, SLOW_CALLS * longest))
        if not stopped.is_set():
            edge("end")
            stopped.set()

    async def loop(connection: int) -> None:
        while not stopped.is_set():
            began = time.perf_counter()
            try:
                await one(connection)
                problem = None
            except Exhausted:
                if not stopped.is_set():
                    edge("end")
                    stopped.set()
                return
            except (aiohttp.ClientError, TimeoutError, LoadError) as error:
                problem = f"{type(error).__name__}: {error}"
            done.append((began, time.perf_counter(), problem))
            warm.add(connection)
            if len(warm) == connections:
                all_warm.set()

    timer = asyncio.create_task(clock())
    await asyncio.gather(*(loop(i) for i in range(connections)))
    timer.cancel()
    if "begin" not in cpu:
        raise LoadError("the calls ran out during the warm-up (too few pre-made codes)")
    inside = [d for d in done if window["begin"] <= d[1] <= window["end"]]
    problems = [d[2] for d in inside if d[2] is not None]
    return Window(
        seconds=window["end"] - window["begin"],
        latencies=[end - began for began, end, problem in inside if problem is None],
        errors=len(problems),
        cpu_seconds=cpu["end"] - cpu["begin"],
        samples=problems[:3],
    )


async def mint_pool(
    client: Client, browsers: list[aiohttp.ClientSession], seconds: float
) -> list[Minted]:
    """Codes minted by the logged-in browsers, all at once, for ``seconds``."""
    pool: list[Minted] = []
    deadline = time.monotonic() + seconds

    async def loop(browser: aiohttp.ClientSession) -> None:
        while time.monotonic() < deadline:
            pool.append(await client.mint(browser))

    await asyncio.gather(*(loop(b) for b in browsers))
    return pool
