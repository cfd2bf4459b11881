from kqv_demo.content.loader import load_bank
from kqv_demo.content.search import filter_claims, searchable_text


def test_filters_combine_and_words_must_all_appear():
    claims = list(load_bank(dialogue=False).claims.values())
    assert filter_claims(claims) == claims
    kl = filter_claims(claims, "KL  Divergence")
    assert "kl-divergence-compares-queries-and-keys" in {c.id for c in kl}
    assert all("kl" in searchable_text(c) and "divergence" in searchable_text(c) for c in kl)
    assert all(c in kl for c in claims if "kl" in searchable_text(c) and "divergence" in searchable_text(c))
    assert filter_claims(claims, "kl divergence zebra") == []
    core = filter_claims(claims, core_only=True)
    assert core and all(c.core for c in core)
    assert all(not c.core for c in claims if c not in core)
    chosen = filter_claims(claims, topics=["softmax", "kl-divergence"], verdicts=["false", "partly"])
    assert chosen and all(c.verdict in ("false", "partly") and {"softmax", "kl-divergence"} & set(c.topics)
                          for c in chosen)
