"""Prometheus metrics of emails: each attempt to send one, by what came of it, once the
mailer's pass that made it commits."""

from __future__ import annotations

from prometheus_client import Counter

EMAILS = Counter(
    "emails_total",
    "Attempts to send an email: sent, retried (failed, tried again later), or failed (failed "
    "for the last time: given up on).",
    ["outcome"],
)
# Bound once: `labels()` validates and locks on every call, and every email counts one.
SENT = EMAILS.labels("sent")
RETRIED = EMAILS.labels("retried")
FAILED = EMAILS.labels("failed")
