"""The chaos suite's own parts that need no mesh: its invariants judged on hand-made rounds,
the email reader against a real rendered email, and the report's table.

The suite itself (`make chaos`) runs for minutes against real processes; it is not part of
`make test`.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chaos.facts import DeadLetterFact, Observed, OrderFact, PaymentFact, Round
from chaos.faults import POISON_BODY
from chaos.invariants import Figures, check
from chaos.load import DECLINED, VISA, Attempt, Outcome
from chaos.mailbox import Mail, read_mail
from chaos.report import figures_table, problems_text
from ecommerce.common.v1 import money_pb2
from ecommerce.events.v1 import events_pb2
from meshkit.messaging.events import EVENT_TYPES, UnknownEvent, decode_event
from meshkit.settings import load_settings
from notification_service.emails import SUBJECTS, EmailRenderer
from notification_service.mailer import SmtpMailer
from notification_service.settings import NotificationSettings

ENDED = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
WIDGET, GADGET = "widget", "gadget"
ANN, BOB = "user-ann", "user-bob"
EMAILS = {ANN: "ann@example.com", BOB: "bob@example.com"}


def _order(
    order_id: str, user: str, status: str, lines: tuple[tuple[str, int], ...], reason: str = ""
) -> tuple[Attempt, OrderFact, PaymentFact, list[Mail]]:
    """An order placed and answered once, final 2 s after the fault, its payment and its
    emails, all as they should be."""
    attempt = Attempt(
        key=f"key-{order_id}",
        customer_id=user,
        card=VISA if status == "PAID" else DECLINED,
        lines=lines,
        answers=[503, 201],
        order_ids=[order_id],
        outcome=Outcome.ACCEPTED,
    )
    order = OrderFact(
        id=order_id,
        user_id=user,
        key=attempt.key,
        status=status,
        cancel_reason=reason,
        created_at=ENDED - timedelta(seconds=5),
        final_at=ENDED + timedelta(seconds=2),
        lines=lines,
    )
    payment = PaymentFact(order_id, "SUCCEEDED" if status == "PAID" else "FAILED")
    outcome = "order.confirmed" if status == "PAID" else "payment.failed"
    mails = [
        Mail(f"<{order_id}-{event}@example.com>", EMAILS[user], SUBJECTS[event], order_id)
        for event in ("order.created", outcome)
    ]
    return attempt, order, payment, mails


def consistent_round() -> Round:
    """Three orders, two paid and one declined, with stock, payments and emails that agree."""
    made = [
        _order("o1", ANN, "PAID", ((WIDGET, 2),)),
        _order("o2", BOB, "PAID", ((WIDGET, 1), (GADGET, 3))),
        _order("o3", ANN, "CANCELLED", ((GADGET, 1),), reason="payment failed: card declined"),
    ]
    refused = Attempt(
        key="key-sold-out",
        customer_id=BOB,
        card=VISA,
        lines=((GADGET, 9),),
        answers=[409],
        refusal="/problems/out-of-stock",
        outcome=Outcome.REFUSED,
    )
    return Round(
        fault="kill-order",
        attempts=(*(m[0] for m in made), refused),
        fault_ended_at=ENDED,
        observed=Observed(
            orders=tuple(m[1] for m in made),
            existing_ids=frozenset({"o1", "o2", "o3"}),
            payments=tuple(m[2] for m in made),
            initial_stock={WIDGET: 10, GADGET: 5},
            # Sold: 3 widgets and 3 gadgets; the declined order's gadget is back on sale.
            stock={WIDGET: 7, GADGET: 2},
            open_reservations=(),
            dead_letters=(),
            mails=tuple(mail for m in made for mail in m[3]),
            emails_of=EMAILS,
        ),
    )


def _observed(round_: Round, **changes: Any) -> Round:
    return dataclasses.replace(round_, observed=dataclasses.replace(round_.observed, **changes))


def test_a_consistent_round_passes_with_its_figures() -> None:
    figures = check(consistent_round())

    assert figures.passed, figures.problems
    assert (figures.placed, figures.retries) == (3, 3)
    assert figures.final_seconds == 2.0
    assert (figures.lost, figures.charged_twice, figures.stock_diff) == (0, 0, 0)
    assert (figures.emails_missing, figures.duplicate_emails, figures.dead_letters) == (0, 0, 0)


def test_an_accepted_order_missing_from_the_database_is_lost() -> None:
    base = consistent_round()
    orders = tuple(o for o in base.observed.orders if o.id != "o2")
    figures = check(_observed(base, orders=orders, existing_ids=frozenset({"o1", "o3"})))

    assert not figures.passed
    assert figures.lost == 1
    assert any("lost" in problem for problem in figures.problems)


def test_one_key_answered_with_two_orders_is_lost() -> None:
    base = consistent_round()
    attempts = list(base.attempts)
    attempts[0] = dataclasses.replace(attempts[0], order_ids=["o1", "o9"])
    figures = check(dataclasses.replace(base, attempts=tuple(attempts)))

    assert not figures.passed and figures.lost == 1


def test_a_second_payment_is_a_double_charge() -> None:
    base = consistent_round()
    payments = (*base.observed.payments, PaymentFact("o1", "SUCCEEDED"))
    figures = check(_observed(base, payments=payments))

    assert not figures.passed and figures.charged_twice == 1


def test_a_cancelled_order_whose_charge_went_through_fails() -> None:
    base = consistent_round()
    payments = tuple(
        PaymentFact(p.order_id, "SUCCEEDED") if p.order_id == "o3" else p
        for p in base.observed.payments
    )
    figures = check(_observed(base, payments=payments))

    assert not figures.passed
    assert any("disagree" in problem for problem in figures.problems)


def test_stock_a_cancelled_order_never_gave_back_is_not_conserved() -> None:
    base = consistent_round()
    figures = check(
        _observed(
            base,
            stock={WIDGET: 7, GADGET: 1},
            open_reservations=(("o3", GADGET, 1),),
        )
    )

    assert not figures.passed and figures.stock_diff == 1
    assert any("o3/gadget x1" in problem for problem in figures.problems)


def test_an_order_still_pending_fails_and_shows_as_pending() -> None:
    base = consistent_round()
    orders = tuple(
        dataclasses.replace(o, status="PENDING", final_at=None) if o.id == "o1" else o
        for o in base.observed.orders
    )
    # Its units are held by its reservation: stock is conserved meanwhile.
    figures = check(_observed(base, orders=orders))

    assert not figures.passed and figures.not_final == 1 and figures.stock_diff == 0
    assert "1 pending" in figures_table([figures])


def test_an_order_final_too_long_after_the_fault_fails() -> None:
    base = consistent_round()
    late = ENDED + timedelta(seconds=45)
    orders = tuple(
        dataclasses.replace(o, final_at=late) if o.id == "o2" else o for o in base.observed.orders
    )
    figures = check(_observed(base, orders=orders))

    assert not figures.passed and figures.final_seconds == 45.0


def test_a_missing_email_fails_and_a_duplicate_is_only_counted() -> None:
    base = consistent_round()
    mails = base.observed.mails
    duplicated = check(_observed(base, mails=(*mails, mails[0])))
    missing = check(_observed(base, mails=mails[1:]))
    wrong = check(
        _observed(base, mails=(*mails, Mail("<x@example.com>", EMAILS[ANN],
                                               SUBJECTS["order.cancelled"], "o3")))
    )  # fmt: skip

    assert duplicated.passed and duplicated.duplicate_emails == 1
    assert not missing.passed and missing.emails_missing == 1
    assert not wrong.passed  # a declined order's cancellation sends no email of its own


def test_only_the_poison_may_be_dead_lettered_and_it_must_be() -> None:
    base = consistent_round()
    poison = DeadLetterFact("payment_service", "poison1", "order.created")
    stray = DeadLetterFact("order_service", "m42", "payment.succeeded")
    expected = frozenset({("payment_service", "poison1")})
    tolerated = frozenset({"poison1"})

    kept = check(
        dataclasses.replace(
            _observed(base, dead_letters=(poison,)),
            expected_dead_letters=expected,
            tolerated_dead_letters=tolerated,
        )
    )
    lost_poison = check(
        dataclasses.replace(base, expected_dead_letters=expected, tolerated_dead_letters=tolerated)
    )
    other = check(
        dataclasses.replace(
            _observed(base, dead_letters=(poison, stray)), tolerated_dead_letters=tolerated
        )
    )

    assert kept.passed and kept.dead_letters == 0
    assert not lost_poison.passed
    assert not other.passed and other.dead_letters == 1


def test_a_refusal_other_than_out_of_stock_and_an_abandoned_order_fail() -> None:
    base = consistent_round()
    refused = Attempt(
        "k1",
        ANN,
        VISA,
        ((WIDGET, 1),),
        answers=[409],
        refusal="/problems/idempotency-key-reused",
        outcome=Outcome.REFUSED,
    )
    abandoned = Attempt("k2", BOB, VISA, ((WIDGET, 1),), answers=[503] * 40,
                        outcome=Outcome.ABANDONED)  # fmt: skip

    figures = check(dataclasses.replace(base, attempts=(*base.attempts, refused, abandoned)))

    assert not figures.passed
    assert figures.retries == 3 + 39
    assert len(figures.problems) == 2


def test_the_mail_reader_finds_the_order_in_a_rendered_email() -> None:
    event = events_pb2.OrderConfirmed(
        order_id="0123abcd",
        user_id=ANN,
        total=money_pb2.Money(amount_minor=1999, currency_code="USD"),
    )
    email = EmailRenderer().render("order.confirmed", event, customer_name="Ann")
    mailer = SmtpMailer(load_settings(NotificationSettings, env_file=None))
    message = mailer.message(EMAILS[ANN], email.subject, email.text, email.html, "<n1@example.com>")

    [mail] = read_mail(message, [EMAILS[ANN]])

    assert mail == Mail("<n1@example.com>", EMAILS[ANN], SUBJECTS["order.confirmed"], "0123abcd")


def test_the_table_has_a_row_per_round_and_lines_up() -> None:
    passed = check(consistent_round())
    failed = Figures(
        fault="rabbitmq-cut",
        placed=310,
        retries=12,
        final_seconds=None,
        not_final=0,
        lost=1,
        charged_twice=0,
        stock_diff=0,
        emails_missing=0,
        duplicate_emails=2,
        dead_letters=0,
        problems=("1 accepted order(s) lost or answered wrongly: k9",),
    )

    lines = figures_table([passed, failed]).splitlines()

    assert len(lines) == 4
    assert len({len(line) for line in lines}) == 1  # every line as wide
    assert lines[0].startswith("| fault ") and "final within s" in lines[0]
    assert lines[2].startswith("| kill-order ") and lines[2].endswith(" PASS |")
    assert lines[3].startswith("| rabbitmq-cut ") and lines[3].endswith(" FAIL |")
    assert " 310 |" in lines[3] and " - |" in lines[3]
    assert problems_text([passed, failed]) == (
        "rabbitmq-cut:\n  - 1 accepted order(s) lost or answered wrongly: k9"
    )


def test_the_poison_message_cannot_be_read_as_any_event() -> None:
    for event_type in EVENT_TYPES:
        with pytest.raises(UnknownEvent):
            decode_event(event_type, POISON_BODY)
