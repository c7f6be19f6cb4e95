"""The entity types the detect stage can find, listed once: the API validates requests
against this list, `GET /v1/audio/enrichment` shows it, and the detector maps its
recognizers onto these ids.

Ids are ElevenLabs' (`person_name`, `credit_card`, ...): native and ElevenLabs requests
name types the same way. Categories follow ElevenLabs too: pii (identifies a person), pci
(payment card industry data), phi (health information), other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Category = Literal["pii", "pci", "phi", "other"]
CATEGORIES: tuple[Category, ...] = ("pii", "pci", "phi", "other")
ALL = "all"


@dataclass(frozen=True)
class EntityType:
    id: str
    category: Category
    method: str  # how it is found, for the listing


ENTITY_TYPES: dict[str, EntityType] = {
    t.id: t
    for t in (
        EntityType("person_name", "pii", "named-entity recognition (spaCy English pipeline)"),
        EntityType("location", "pii", "named-entity recognition (spaCy English pipeline)"),
        EntityType("email_address", "pii", "pattern, written or spoken ('margaret at example dot com')"),
        EntityType("phone_number", "pii", "phonenumbers, written or spoken digit by digit"),
        EntityType("ssn", "pii", "US social security number pattern with validity checks, written or spoken"),
        EntityType("ip_address", "pii", "IPv4/IPv6 pattern"),
        EntityType("credit_card", "pci", "card number pattern with the Luhn check, written or spoken digit by digit"),
        EntityType("iban", "pci", "IBAN pattern with its checksum"),
        EntityType("medical_license", "phi", "US medical license (DEA) pattern with its checksum"),
        EntityType("organization", "other", "named-entity recognition (spaCy English pipeline)"),
    )
}


def select(requested: list[str]) -> list[str]:
    """Type ids for a request's selection: `all`, categories and type ids, in any mix.
    Raises ValueError naming what is not known."""
    chosen: list[str] = []
    for item in (r.strip().lower() for r in requested):
        if not item:
            continue
        if item == ALL:
            ids = list(ENTITY_TYPES)
        elif item in CATEGORIES:
            ids = [t.id for t in ENTITY_TYPES.values() if t.category == item]
        elif item in ENTITY_TYPES:
            ids = [item]
        else:
            raise ValueError(
                f"unknown entity type or category {item!r}; use 'all', a category ({', '.join(CATEGORIES)}) "
                f"or types ({', '.join(ENTITY_TYPES)})"
            )
        chosen += [i for i in ids if i not in chosen]
    if not chosen:
        raise ValueError("no entity types selected")
    return chosen
