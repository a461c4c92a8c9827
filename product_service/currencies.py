"""ISO 4217 currency codes a price may be given in."""

from __future__ import annotations

# ISO 4217 List One: its active alphabetic codes as of February 2026 (the data of Debian's
# iso-codes, as shipped in pycountry 26.2.16), less what no shop prices in: precious metals
# (XAU, XAG, XPT, XPD), bond market units (XBA-XBD), special drawing rights and other units
# of account (XDR, XSU, XUA, XAD), the testing code (XTS) and "no currency" (XXX). Withdrawn
# codes (HRK, SLL, ZWL, ANG, CUC, ...) are out too, as no new price is quoted in them. List
# One changes a few times a year: follow its amendments here.
ISO_4217_CODES = frozenset(
    """
    AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BHD BIF BMD BND BOB BOV BRL BSD BTN
    BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK DOP DZD
    EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR
    IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD
    MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD
    OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE
    SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI
    UYU UYW UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
    """.split()  # noqa: SIM905  (as a list literal, one code a line)
)
