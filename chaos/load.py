"""Orders placed through the gateway at a steady rate, each by a client that retries as a real
one does: the same Idempotency-Key and body again after a 5xx, a 429 or a dropped connection,
with backoff, for a bounded time."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import httpx

from chaos.seed import Person

VISA, DECLINED = "pm_card_visa", "pm_card_chargeDeclined"
# Of every hundred orders, this many pay with a card that is declined.
DECLINED_PERCENT = 15
# A client gives up on an order after retrying it this long: more than the longest outage
# that stops orders from being placed (the product service down for 30 s, then starting).
RETRY_BUDGET_SECONDS = 90.0
REQUEST_TIMEOUT_SECONDS = 10.0
FIRST_BACKOFF_SECONDS, MAX_BACKOFF_SECONDS = 0.2, 2.0
ADDRESS = {
    "recipient": "Ada Lovelace",
    "line1": "12 St James's Square",
    "city": "London",
    "postal_code": "SW1Y 4JH",
    "country_code": "GB",
}


class Outcome(StrEnum):
    PENDING = "pending"  # still being tried
    ACCEPTED = "accepted"  # 201 (or 200): the order's id is known
    REFUSED = "refused"  # a 4xx other than 429: final, nothing to retry
    ABANDONED = "abandoned"  # out of retries, the order's fate unknown to its client


@dataclass
class Attempt:
    """One order as its client saw it: every answer to its Idempotency-Key."""

    key: str
    customer_id: str
    card: str
    # (product id, quantity) per line.
    lines: tuple[tuple[str, int], ...]
    # The HTTP status of each try, 0 for none (a refused or dropped connection, a timeout).
    answers: list[int] = field(default_factory=list)
    # The order id of each success: one, or the same again, if all is well.
    order_ids: list[str] = field(default_factory=list)
    # The problem type of a refusal.
    refusal: str = ""
    outcome: Outcome = Outcome.PENDING

    @property
    def retries(self) -> int:
        return max(0, len(self.answers) - 1)


def _backoff(tries: int, retry_after: str | None) -> float:
    delay = min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2.0**tries) * random.uniform(0.5, 1)
    if retry_after:
        # What the server asked for, within reason: a client does not wait minutes.
        with contextlib.suppress(ValueError):
            delay = max(delay, min(5.0, float(retry_after)))
    return delay


class OrderLoad:
    def __init__(
        self,
        client: httpx.AsyncClient,
        customers: Sequence[Person],
        product_ids: Sequence[str],
        rate: float,
        rng: random.Random,
    ) -> None:
        self.client = client
        self.customers = list(customers)
        self.product_ids = list(product_ids)
        self.rate = rate
        self.rng = rng
        self.attempts: list[Attempt] = []
        self._stopped = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Place `rate` orders a second until `stop`; each goes on being tried after that."""
        began = time.monotonic()
        placed = 0
        while not self._stopped.is_set():
            self.place()
            placed += 1
            delay = began + placed / self.rate - time.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), delay)

    def stop(self) -> None:
        self._stopped.set()

    async def drain(self) -> None:
        """Until every order placed so far has its outcome."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    def place(self, card: str | None = None, among: Sequence[str] | None = None) -> Attempt:
        """One order now, with `card` or one drawn from the mix, of products `among` (by
        default all); its record fills in as its answers come."""
        customer = self.customers[len(self.attempts) % len(self.customers)]
        if card is None:
            card = DECLINED if self.rng.randrange(100) < DECLINED_PERCENT else VISA
        candidates = list(among or self.product_ids)
        products = self.rng.sample(candidates, min(len(candidates), self.rng.choice((1, 1, 2))))
        attempt = Attempt(
            key=uuid.uuid4().hex,
            customer_id=customer.id,
            card=card,
            lines=tuple((product, self.rng.randint(1, 3)) for product in products),
        )
        self.attempts.append(attempt)
        task = asyncio.create_task(self._until_answered(attempt, customer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return attempt

    async def _until_answered(self, attempt: Attempt, customer: Person) -> None:
        body = {
            "items": [{"product_id": p, "quantity": q} for p, q in attempt.lines],
            "payment_method": attempt.card,
            "shipping_address": ADDRESS,
        }
        headers = {**customer.headers, "Idempotency-Key": attempt.key}
        deadline = time.monotonic() + RETRY_BUDGET_SECONDS
        tries = 0
        while True:
            response: httpx.Response | None
            try:
                response = await self.client.post(
                    "/v1/orders", json=body, headers=headers, timeout=REQUEST_TIMEOUT_SECONDS
                )
            except httpx.HTTPError:
                response = None
            attempt.answers.append(response.status_code if response is not None else 0)
            if response is not None and response.status_code in (200, 201):
                attempt.order_ids.append(str(response.json()["id"]))
                attempt.outcome = Outcome.ACCEPTED
                return
            if response is not None and _final(response.status_code):
                attempt.refusal = _problem_type(response)
                attempt.outcome = Outcome.REFUSED
                return
            if time.monotonic() >= deadline:
                attempt.outcome = Outcome.ABANDONED
                return
            retry_after = response.headers.get("retry-after") if response is not None else None
            await asyncio.sleep(_backoff(tries, retry_after))
            tries += 1


def _final(status: int) -> bool:
    """A refusal that the same request would get again: any 4xx but 429 (too many requests)."""
    return 400 <= status < 500 and status != 429


def _problem_type(response: httpx.Response) -> str:
    try:
        return str(response.json().get("type", response.status_code))
    except ValueError:
        return str(response.status_code)
