"""Where a claim comes from: the dialogue's quote or the public posts, and the words it is listed by."""

from __future__ import annotations

import pytest

from kqv_demo.claim_source import addresses, from_origin, headline
from kqv_demo.content.loader import load_bank


@pytest.fixture(scope="module")
def bank():
    return load_bank(dialogue=False)


def test_every_claim_is_listed_by_words_it_really_has(bank):
    for claim in bank.claims.values():
        if claim.origin == "dialogue":
            assert headline(claim) == claim.quote and not addresses(claim)
        elif claim.verdict == "true":
            assert headline(claim) == claim.refutation.claim
        else:
            assert headline(claim) == claim.misconception
        assert headline(claim).strip() and headline(claim) != "None"


def test_public_claims_give_their_addresses_exactly(bank):
    public = [claim for claim in bank.claims.values() if claim.origin == "public"]
    assert public
    for claim in public:
        assert addresses(claim) == [str(url) for url in claim.seen_at]
        assert all(address.startswith(("https://", "http://")) for address in addresses(claim))


def test_origins_split_the_bank(bank):
    claims = list(bank.claims.values())
    dialogue, public = from_origin(claims, "dialogue"), from_origin(claims, "public")
    assert dialogue and public and len(dialogue) + len(public) == len(claims)
    assert {c.origin for c in dialogue} == {"dialogue"} and {c.origin for c in public} == {"public"}
    assert from_origin(claims, "all") == from_origin(claims, None) == claims
