"""Labelled answer text for output-drift tests and benchmarks: paraphrases of one topic, and a second
topic of the same length."""

from __future__ import annotations

import random

_REFUND = (
    ("Your refund", "The refund", "Your reimbursement", "The money back"),
    ("was issued", "has been processed", "went out", "was sent"),
    ("to your card", "to the original card", "to your payment method", "back to your card"),
    ("and should arrive", "and will show up", "and ought to appear", "and should land"),
    ("within five business days.", "in about five working days.", "within a week.", "in five days or so."),
    ("Thanks for your patience.", "Thank you for waiting.", "We appreciate your patience.",
     "Thanks for bearing with us."),
)
_SHIPPING = (
    ("Your parcel", "The package", "Your shipment", "The order"),
    ("left our warehouse", "was handed to the courier", "departed the depot", "shipped out"),
    ("this morning by truck", "earlier today by van", "overnight via freight", "today with the carrier"),
    ("and tracking shows", "and the courier says", "and the label shows", "and the status says"),
    ("delivery by Thursday evening.", "arrival on Friday afternoon.", "delivery before the weekend.",
     "drop-off on Thursday."),
    ("Track it with the link.", "Use the tracking link.", "Follow it with the link.", "Check the tracking page."),
)


def answer(rng: random.Random, topic: str = "refund") -> str:
    slots = _REFUND if topic == "refund" else _SHIPPING
    return " ".join(rng.choice(options) for options in slots)
