"""Validity checks that tell identifiers from look-alike digit runs (order ids, timestamps, hashes).

Examples:
    >>> luhn_valid("4111111111111111"), luhn_valid("4111111111111112")
    (True, False)
    >>> card_valid("4111 1111 1111 1111"), card_valid("1764147600123")  # a Luhn-valid epoch-ms timestamp
    (True, False)
    >>> iban_valid("de89 3704 0044 0532 0130 00"), iban_valid("DE89370400440532013001")
    (True, False)
    >>> ssn_valid("123-45-6789"), ssn_valid("666-45-6789")
    (True, False)
"""

from __future__ import annotations

_NOT_DIGIT = str.maketrans("", "", " .-/")


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) checksum of a string of ASCII digits."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


# (lowest prefix, highest prefix, allowed lengths): the issuer ranges of the card networks.
_CARD_RANGES: tuple[tuple[int, int, frozenset[int]], ...] = (
    (4, 4, frozenset({13, 16, 19})),  # Visa
    (51, 55, frozenset({16})),  # Mastercard
    (2221, 2720, frozenset({16})),  # Mastercard 2-series
    (34, 34, frozenset({15})), (37, 37, frozenset({15})),  # American Express
    (300, 305, frozenset(range(14, 20))), (36, 36, frozenset(range(14, 20))),  # Diners Club
    (38, 39, frozenset(range(14, 20))),
    (3528, 3589, frozenset(range(16, 20))),  # JCB
    (6011, 6011, frozenset(range(16, 20))), (644, 649, frozenset(range(16, 20))),  # Discover
    (65, 65, frozenset(range(16, 20))),
    (62, 62, frozenset(range(16, 20))),  # UnionPay
    (50, 50, frozenset(range(13, 20))), (56, 69, frozenset(range(13, 20))),  # Maestro and others
)


def card_valid(candidate: str) -> bool:
    """A payment card number: 13–19 digits (spaces, dots, dashes ignored), a known issuer range, Luhn-valid."""
    digits = candidate.translate(_NOT_DIGIT)
    if not (13 <= len(digits) <= 19 and digits.isdigit()):
        return False
    for low, high, lengths in _CARD_RANGES:
        width = len(str(low))
        if low <= int(digits[:width]) <= high and len(digits) in lengths:
            return luhn_valid(digits)
    return False


# ISO 13616 lengths by country (SWIFT IBAN registry), so a mod-97 accident in another shape is not an IBAN.
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25,
    "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18,
    "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33,
    "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}


def iban_valid(candidate: str) -> bool:
    """An IBAN in any case, with or without space/dash grouping: known country, its length, mod 97 == 1."""
    compact = candidate.translate(_NOT_DIGIT).upper()
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact[2:4].isdigit() or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


_SSN_NEVER_ISSUED = frozenset({"078051120", "219099999", "457555462"})  # published in ads and samples


def ssn_valid(candidate: str) -> bool:
    """A US Social Security number as the SSA issues them (area not 000/666/9xx, group and serial not zero)."""
    digits = candidate.translate(_NOT_DIGIT)
    if len(digits) != 9 or not digits.isdigit() or digits in _SSN_NEVER_ISSUED:
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"
