"""What callers ask the order service to do, validated into plain values."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from meshkit.errors import NUL, NUL_MESSAGE, FieldViolation, InvalidArgument
from order_service.upstream import Line

MAX_LINES = 100
MAX_QUANTITY = 1_000
MAX_KEY_LENGTH = 128

# ISO 3166-1 alpha-2: the 249 officially assigned codes as of February 2026 (the data of
# Debian's iso-codes, as shipped in pycountry 26.2.16). Reserved and user-assigned codes (EU,
# UK, XK, ...) name no country of the standard and are refused. A new code is rare (the
# latest, SS, dates from 2011); follow the standard's changes here.
ISO_3166_ALPHA_2 = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO
    BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ
    DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP
    GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG
    KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML
    MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE
    PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL
    SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM
    US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
    """.split()  # noqa: SIM905  (as a list literal, one code a line: 249 lines)
)


@dataclass(frozen=True)
class Address:
    recipient: str
    line1: str
    line2: str
    city: str
    postal_code: str
    country_code: str

    def violations(self, prefix: str = "shipping_address") -> list[FieldViolation]:
        problems = [
            FieldViolation(f"{prefix}.{name}", "is required")
            for name in ("recipient", "line1", "city", "country_code")
            if not getattr(self, name).strip()
        ]
        # Two letters are not enough: "ZZ" names no country a parcel could be sent to.
        if self.country_code.strip() and self.country_code not in ISO_3166_ALPHA_2:
            problems.append(
                FieldViolation(
                    f"{prefix}.country_code",
                    "must be an assigned ISO 3166-1 alpha-2 code, such as GB",
                )
            )
        problems += [
            FieldViolation(f"{prefix}.{name}", "must be at most 200 characters")
            for name, value in asdict(self).items()
            if len(value) > 200
        ]
        problems += [
            FieldViolation(f"{prefix}.{name}", NUL_MESSAGE)
            for name, value in asdict(self).items()
            if NUL in value
        ]
        return problems

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class PlaceOrder:
    idempotency_key: str
    lines: tuple[Line, ...]
    payment_method: str
    address: Address

    @classmethod
    def validated(
        cls,
        idempotency_key: str,
        lines: list[tuple[str, int]],
        payment_method: str,
        address: Address,
    ) -> PlaceOrder:
        problems: list[FieldViolation] = []
        key = idempotency_key.strip()
        if not key:
            problems.append(
                FieldViolation("idempotency_key", "is required (Idempotency-Key header)")
            )
        elif len(key) > MAX_KEY_LENGTH:
            problems.append(
                FieldViolation("idempotency_key", f"must be at most {MAX_KEY_LENGTH} characters")
            )
        elif NUL in key:
            problems.append(FieldViolation("idempotency_key", NUL_MESSAGE))
        if not lines:
            problems.append(FieldViolation("items", "must hold at least one item"))
        elif len(lines) > MAX_LINES:
            problems.append(FieldViolation("items", f"must hold at most {MAX_LINES} items"))
        merged: dict[str, int] = {}
        for index, (product_id, quantity) in enumerate(lines):
            if not product_id.strip():
                problems.append(FieldViolation(f"items[{index}].product_id", "is required"))
            elif NUL in product_id:
                problems.append(FieldViolation(f"items[{index}].product_id", NUL_MESSAGE))
            if not 1 <= quantity <= MAX_QUANTITY:
                problems.append(
                    FieldViolation(
                        f"items[{index}].quantity", f"must be between 1 and {MAX_QUANTITY}"
                    )
                )
            merged[product_id] = merged.get(product_id, 0) + quantity
        if any(q > MAX_QUANTITY for q in merged.values()) and not problems:
            problems.append(FieldViolation("items", f"at most {MAX_QUANTITY} of one product"))
        if not payment_method.strip():
            problems.append(FieldViolation("payment_method", "is required"))
        elif len(payment_method) > 64:
            problems.append(FieldViolation("payment_method", "must be at most 64 characters"))
        elif NUL in payment_method:
            problems.append(FieldViolation("payment_method", NUL_MESSAGE))
        problems += address.violations()
        if problems:
            raise InvalidArgument("The order has invalid fields.", problems)
        return cls(
            idempotency_key=key,
            lines=tuple(Line(pid, qty) for pid, qty in sorted(merged.items())),
            payment_method=payment_method.strip(),
            address=address,
        )

    @property
    def fingerprint(self) -> str:
        """Identifies the request body: same key and same fingerprint is a replay."""
        body = {
            "lines": [[line.product_id, line.quantity] for line in self.lines],
            "payment_method": self.payment_method,
            "address": asdict(self.address),
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
