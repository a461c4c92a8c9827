"""Tables of the product service's own database."""

from __future__ import annotations

from meshkit.db import new_metadata

metadata = new_metadata()
