"""The invariants a round must keep, checked on its facts alone: no I/O here."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from chaos.facts import CANCELLED, FINAL, PAID, PENDING, SHIPPED, OrderFact, PaymentFact, Round
from chaos.load import Attempt, Outcome
from chaos.mailbox import Mail
from notification_service.emails import SUBJECTS

# Every accepted order PAID or CANCELLED within this long of the fault's end (or of its own
# placement, for one placed after).
FINAL_WITHIN_SECONDS = 30.0
# A refusal a client may meet under load whatever the faults: the scarce product sold out.
ACCEPTABLE_REFUSALS = ("out-of-stock",)
# The order service's reason when the payment was declined; the payment.failed email then
# tells the customer, and order.cancelled sends none (`notification_service.notifications`).
PAYMENT_FAILED_REASON = "payment failed"


@dataclass(frozen=True)
class Figures:
    """One row of the report."""

    fault: str
    placed: int
    retries: int
    # The longest an order took to become final after the fault ended; None without orders.
    final_seconds: float | None
    not_final: int
    lost: int
    charged_twice: int
    stock_diff: int
    emails_missing: int
    duplicate_emails: int
    dead_letters: int
    problems: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.problems


def lost_orders(
    attempts: Iterable[Attempt], orders: Iterable[OrderFact], existing_ids: frozenset[str]
) -> list[str]:
    """The keys of accepted orders that are not what their clients were told: the order of
    (customer, key) missing, another than the one answered, or answered as two."""
    by_key = {(order.user_id, order.key): order for order in orders}
    lost = []
    for attempt in attempts:
        if attempt.outcome is not Outcome.ACCEPTED:
            continue
        ids = set(attempt.order_ids)
        order = by_key.get((attempt.customer_id, attempt.key))
        if len(ids) != 1 or order is None or order.id not in ids or not ids <= existing_ids:
            lost.append(attempt.key)
    return lost


def orders_per_key(orders: Iterable[OrderFact]) -> list[tuple[str, str]]:
    """(user, key) pairs with more than one order."""
    counts = Counter((order.user_id, order.key) for order in orders)
    return [pair for pair, count in counts.items() if count > 1]


def seconds_to_final(orders: Iterable[OrderFact], fault_ended_at: datetime) -> float | None:
    """The longest any final order took to become final, counted from the fault's end, or
    from its placement when that came later."""
    longest: float | None = None
    for order in orders:
        if order.final_at is None:
            continue
        since = max(order.created_at, fault_ended_at)
        took = max(0.0, (order.final_at - since).total_seconds())
        longest = took if longest is None else max(longest, took)
    return longest


def double_charges(payments: Iterable[PaymentFact]) -> list[str]:
    """Orders with more than one payment."""
    counts = Counter(payment.order_id for payment in payments)
    return sorted(order for order, count in counts.items() if count > 1)


def payment_disagreements(
    orders: Iterable[OrderFact], payments: Iterable[PaymentFact]
) -> list[str]:
    """Orders whose payment says otherwise: PAID without a charge that succeeded, or
    CANCELLED with one that was not given back."""
    succeeded = {payment.order_id for payment in payments if payment.status == "SUCCEEDED"}
    found = []
    for order in orders:
        if order.status in (PAID, SHIPPED) and order.id not in succeeded:
            found.append(f"{order.id} is {order.status} without a successful payment")
        elif order.status == CANCELLED and order.id in succeeded:
            found.append(f"{order.id} is CANCELLED but its payment SUCCEEDED (not refunded)")
    return found


def stock_differences(
    initial: Mapping[str, int], current: Mapping[str, int], orders: Iterable[OrderFact]
) -> dict[str, int]:
    """Per product, units neither on sale nor sold (positive: missing; negative: made up).
    Sold is what PAID (or SHIPPED) orders hold; a PENDING order's units are counted as sold
    too, since its reservation holds them, but a round checks this only once none is left."""
    sold: Counter[str] = Counter()
    for order in orders:
        if order.status in (PAID, SHIPPED, PENDING):
            for product, quantity in order.lines:
                sold[product] += quantity
    differences = {}
    for product, stock in initial.items():
        difference = stock - current.get(product, 0) - sold[product]
        if difference:
            differences[product] = difference
    return differences


def expected_subjects(order: OrderFact) -> set[str]:
    """The emails a final order's customer gets, by subject (notification_service's rules)."""
    subjects = {SUBJECTS["order.created"]}
    if order.status in (PAID, SHIPPED):
        subjects.add(SUBJECTS["order.confirmed"])
    if order.status == SHIPPED:
        subjects.add(SUBJECTS["order.shipped"])
    if order.status == CANCELLED:
        declined = order.cancel_reason.startswith(PAYMENT_FAILED_REASON)
        subjects.add(SUBJECTS["payment.failed" if declined else "order.cancelled"])
    return subjects


@dataclass(frozen=True)
class EmailFindings:
    missing: list[str]
    # Emails no rule asks for, or sent to someone other than the order's customer.
    unexpected: list[str]
    duplicates: int


def email_findings(
    orders: Iterable[OrderFact], mails: Sequence[Mail], emails_of: Mapping[str, str]
) -> EmailFindings:
    """Each final order's emails against what its outcome calls for; the same email received
    more than once is a duplicate (sending is at least once), not a failure."""
    received: Counter[tuple[str, str]] = Counter()
    for mail in mails:
        received[(mail.order_id, mail.subject)] += 1
    missing: list[str] = []
    unexpected: list[str] = []
    duplicates = 0
    for order in orders:
        if order.status not in FINAL:
            continue
        expected = expected_subjects(order)
        got = {subject for (order_id, subject) in received if order_id == order.id}
        missing += [f"{order.id}: {subject!r}" for subject in sorted(expected - got)]
        unexpected += [f"{order.id}: {subject!r}" for subject in sorted(got - expected)]
        duplicates += sum(received[(order.id, subject)] - 1 for subject in got)
        owner = emails_of.get(order.user_id)
        unexpected += [
            f"{order.id}: {mail.subject!r} to {mail.recipient}"
            for mail in mails
            if mail.order_id == order.id and mail.recipient != owner
        ]
    return EmailFindings(missing, unexpected, duplicates)


def _sample(items: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def check(round_: Round) -> Figures:
    """Every invariant of one round; each one broken is a problem, said in a sentence."""
    observed = round_.observed
    attempts = round_.attempts
    orders = observed.orders
    problems = list(round_.incidents)

    lost = lost_orders(attempts, orders, observed.existing_ids)
    if lost:
        problems.append(f"{len(lost)} accepted order(s) lost or answered wrongly: {_sample(lost)}")
    doubled_keys = orders_per_key(orders)
    if doubled_keys:
        problems.append(f"{len(doubled_keys)} key(s) with more than one order")
    abandoned = [a.key for a in attempts if a.outcome is Outcome.ABANDONED]
    if abandoned:
        problems.append(f"{len(abandoned)} order(s) still failing after every retry")
    refusals = [
        f"{a.refusal} ({a.key})"
        for a in attempts
        if a.outcome is Outcome.REFUSED and not a.refusal.endswith(ACCEPTABLE_REFUSALS)
    ]
    if refusals:
        problems.append(f"{len(refusals)} order(s) refused: {_sample(refusals)}")

    pending = [order.id for order in orders if order.status not in FINAL]
    if pending:
        problems.append(f"{len(pending)} order(s) not final: {_sample(pending)}")
    final_seconds = seconds_to_final(orders, round_.fault_ended_at)
    if final_seconds is not None and final_seconds > FINAL_WITHIN_SECONDS:
        problems.append(
            f"an order took {final_seconds:.1f}s after the fault to become final "
            f"(limit {FINAL_WITHIN_SECONDS:.0f}s)"
        )

    charged_twice = double_charges(observed.payments)
    if charged_twice:
        problems.append(f"{len(charged_twice)} order(s) charged twice: {_sample(charged_twice)}")
    disagreements = payment_disagreements(orders, observed.payments)
    if disagreements:
        problems.append(f"{len(disagreements)} payment(s) disagree: {_sample(disagreements)}")

    differences = stock_differences(observed.initial_stock, observed.stock, orders)
    if differences:
        live = {order.id for order in orders if order.status in (PAID, SHIPPED, PENDING)}
        leaked = [f"{o}/{p} x{q}" for o, p, q in observed.open_reservations if o not in live]
        problems.append(
            f"stock not conserved: {differences}"
            + (f"; reservations held for no live order: {_sample(leaked)}" if leaked else "")
        )

    emails = email_findings(orders, observed.mails, observed.emails_of)
    if emails.missing:
        problems.append(f"{len(emails.missing)} email(s) missing: {_sample(emails.missing)}")
    if emails.unexpected:
        problems.append(
            f"{len(emails.unexpected)} unexpected email(s): {_sample(emails.unexpected)}"
        )

    letters = {(letter.consumer, letter.message_id) for letter in observed.dead_letters}
    unexpected_letters = [
        f"{letter.event_type} {letter.message_id} in {letter.consumer}'s"
        for letter in observed.dead_letters
        if letter.message_id not in round_.tolerated_dead_letters
    ]
    if unexpected_letters:
        problems.append(f"dead-lettered: {_sample(unexpected_letters)}")
    for consumer, message_id in sorted(round_.expected_dead_letters - letters):
        problems.append(f"{message_id} is not in {consumer}'s dead-letter queue")

    if observed.stale_reads:
        problems.append(
            f"{len(observed.stale_reads)} order(s) read through the gateway with a stale status: "
            f"{_sample(list(observed.stale_reads))}"
        )

    return Figures(
        fault=round_.fault,
        placed=sum(1 for a in attempts if a.outcome is Outcome.ACCEPTED),
        retries=sum(a.retries for a in attempts),
        final_seconds=final_seconds,
        not_final=len(pending),
        lost=len(lost),
        charged_twice=len(charged_twice),
        stock_diff=sum(abs(d) for d in differences.values()),
        emails_missing=len(emails.missing),
        duplicate_emails=emails.duplicates,
        dead_letters=len(unexpected_letters),
        problems=tuple(problems),
    )
