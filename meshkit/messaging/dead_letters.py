"""A consumer's dead-letter queue, for an operator: list, show, replay and discard.

`python -m <service> dead-letters list | show ID | replay ID... | discard ID...`, the last two
also with `--all`. Browsing takes the messages from the queue without acknowledging them and
gives them all back when it is done, so listing changes nothing. A replay publishes a fresh
copy, with the same message id, to the consumer's own queue (not to every queue bound to its
event type), waits for the broker's confirm, and only then removes the dead letter: a replay
cut short leaves the message in both queues, and the consumer's inbox, which remembers every
message id it handled, takes it once however often it arrives.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from google.protobuf.json_format import MessageToDict

from meshkit.messaging.amqp import Topology, fresh_copy
from meshkit.messaging.events import UnknownEvent, decode_event
from meshkit.messaging.inbox import OUTAGE_RETRIES_HEADER, OUTAGE_SINCE_HEADER
from meshkit.settings import CommonSettings

# A browse holds every message it has taken until it ends: this many at most.
BROWSE_LIMIT = 10_000
_CONFIRM_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class DeadLetter:
    """What an operator needs to know of a dead-lettered message."""

    message_id: str
    event_type: str
    correlation_id: str
    published_at: datetime | None
    # The broker's record of the dead-lettering (`x-death`): why, from which queue, when.
    reason: str
    dead_lettered_at: datetime | None
    headers: dict[str, Any]
    body: bytes

    @classmethod
    def of(cls, message: AbstractIncomingMessage) -> DeadLetter:
        headers: dict[str, Any] = dict(message.headers or {})
        deaths = headers.get("x-death")
        death: dict[str, Any] = (
            deaths[0] if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict) else {}
        )
        when = death.get("time")
        return cls(
            message_id=message.message_id or "",
            event_type=message.type or "",
            correlation_id=message.correlation_id or "",
            published_at=message.timestamp,
            reason=str(death.get("reason", "")),
            dead_lettered_at=when if isinstance(when, datetime) else None,
            headers=headers,
            body=message.body,
        )

    def details(self) -> dict[str, Any]:
        """Everything known of it, the body decoded where its type is known, as JSON."""
        try:
            body: Any = MessageToDict(
                decode_event(self.event_type, self.body), preserving_proto_field_name=True
            )
        except UnknownEvent as error:
            body = {"undecodable": str(error), "bytes": len(self.body)}
        return {
            "message_id": self.message_id,
            "event_type": self.event_type,
            "correlation_id": self.correlation_id,
            "published_at": _iso(self.published_at),
            "reason": self.reason,
            "dead_lettered_at": _iso(self.dead_lettered_at),
            "headers": {name: _plain(value) for name, value in self.headers.items()},
            "body": body,
        }


class DeadLetterQueue:
    """The dead-letter queue of `consumer`, on a connection the caller owns."""

    def __init__(
        self, connection: aio_pika.abc.AbstractConnection, topology: Topology, consumer: str
    ) -> None:
        self.connection = connection
        self.topology = topology
        self.consumer = consumer
        self.name = topology.dead_letter_queue(consumer)

    async def browse(self, limit: int = BROWSE_LIMIT) -> list[DeadLetter]:
        channel = await self.connection.channel()
        try:
            return [DeadLetter.of(message) for message in await self._take(channel, limit)]
        finally:
            await channel.close()  # gives every message back, unacknowledged

    async def replay(self, message_ids: Sequence[str] | None) -> list[str]:
        """Send these (all, for None) back to the consumer; the ids replayed."""
        return await self._settle(message_ids, replay=True)

    async def discard(self, message_ids: Sequence[str] | None) -> list[str]:
        """Remove these (all, for None) for good; the ids discarded."""
        return await self._settle(message_ids, replay=False)

    async def _settle(self, message_ids: Sequence[str] | None, *, replay: bool) -> list[str]:
        wanted = None if message_ids is None else set(message_ids)
        channel = await self.connection.channel(publisher_confirms=True, on_return_raises=True)
        done: list[str] = []
        try:
            for message in await self._take(channel, BROWSE_LIMIT):
                if wanted is not None and message.message_id not in wanted:
                    continue
                if replay:
                    # Confirmed (and routed: a missing queue raises) before the dead letter goes.
                    await channel.default_exchange.publish(
                        fresh_copy(message, drop=(OUTAGE_SINCE_HEADER, OUTAGE_RETRIES_HEADER)),
                        routing_key=self.topology.queue(self.consumer),
                        mandatory=True,
                        timeout=_CONFIRM_TIMEOUT_SECONDS,
                    )
                await message.ack()
                done.append(message.message_id or "")
        finally:
            await channel.close()
        return done

    async def _take(self, channel: AbstractChannel, limit: int) -> list[AbstractIncomingMessage]:
        queue = await channel.declare_queue(self.name, passive=True)
        taken: list[AbstractIncomingMessage] = []
        while len(taken) < limit:
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            taken.append(message)
        return taken


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _plain(value: Any) -> Any:
    """A header value as JSON can hold it."""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _parser(service: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m {service} dead-letters",
        description=f"The messages {service} could not handle, kept in its dead-letter queue.",
    )
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="one line per message, oldest first")
    listing.add_argument("--limit", type=int, default=100)
    show = actions.add_parser("show", help="one message in full, as JSON")
    show.add_argument("message_id")
    for name, verb in (("replay", "send back to the consumer"), ("discard", "delete for good")):
        action = actions.add_parser(name, help=f"{verb}: the messages named, or --all")
        chosen = action.add_mutually_exclusive_group(required=True)
        chosen.add_argument("message_ids", nargs="*", default=[])
        chosen.add_argument("--all", action="store_true")
    return parser


async def run_command(
    settings: CommonSettings, argv: Sequence[str], out: TextIO = sys.stdout
) -> int:
    """`dead-letters` for the service `settings` belong to; the exit status."""
    service = settings.service_name
    args = _parser(service).parse_args(list(argv))
    if args.action in ("replay", "discard") and not args.all and not args.message_ids:
        _parser(service).error(f"{args.action} needs message ids, or --all")
    connection = await aio_pika.connect(
        settings.amqp_url, client_properties={"connection_name": f"{service} dead-letters"}
    )
    try:
        queue = DeadLetterQueue(connection, Topology(settings.amqp_namespace), service)
        if args.action == "list":
            letters = await queue.browse(args.limit)
            _print_table(letters, queue.name, out)
            return 0
        if args.action == "show":
            found = [
                letter for letter in await queue.browse() if letter.message_id == args.message_id
            ]
            if not found:
                print(f"no message {args.message_id} in {queue.name}", file=sys.stderr)
                return 1
            print(json.dumps(found[0].details(), indent=2), file=out)
            return 0
        ids = None if args.all else args.message_ids
        settle = queue.replay if args.action == "replay" else queue.discard
        done = await settle(ids)
        verb = "replayed" if args.action == "replay" else "discarded"
        for message_id in done:
            print(f"{verb} {message_id}", file=out)
        missing = [] if ids is None else sorted(set(ids) - set(done))
        for message_id in missing:
            print(f"no message {message_id} in {queue.name}", file=sys.stderr)
        return 1 if missing else 0
    finally:
        await connection.close()


def _print_table(letters: Sequence[DeadLetter], queue: str, out: TextIO) -> None:
    if not letters:
        print(f"{queue} is empty", file=out)
        return
    print(f"{len(letters)} message(s) in {queue}:", file=out)
    rows = [("MESSAGE ID", "TYPE", "CORRELATION ID", "DEAD-LETTERED AT", "REASON")]
    rows += [
        (
            letter.message_id,
            letter.event_type,
            letter.correlation_id,
            _iso(letter.dead_lettered_at) or "",
            letter.reason,
        )
        for letter in letters
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(),
            file=out,
        )


def dead_letters_command(settings: CommonSettings, argv: list[str]) -> None:
    """The `dead-letters` command of every service that consumes events."""
    raise SystemExit(asyncio.run(run_command(settings, argv)))
