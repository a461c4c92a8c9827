"""Tables of the payment service's own database."""

from __future__ import annotations

from meshkit.db import new_metadata

metadata = new_metadata()
