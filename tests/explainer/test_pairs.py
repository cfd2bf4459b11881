"""The stance model's training pairs (explainer/pairs.py): from the bank and the public texts, the same list
every time, with the hard pairs that teach it that a sentence sharing words with a misconception need not
assert it. Pure: no model is loaded."""

from __future__ import annotations

from kqv_demo.content.loader import load_bank
from kqv_demo.content.stance_texts import StanceText
import torch

from kqv_demo.explainer.pairs import (ASSERTS, DENIES, MIN_WORD_OVERLAP, NOT_ASSERTS, _Words, content_words,
                                      pairs_digest, training_pairs)
from kqv_demo.explainer.stance_model import training_loss
from kqv_demo.explainer.statements import vetted_statements

BANK = load_bank(dialogue=False)
STATEMENTS = vetted_statements(BANK)
BY_ID = {statement.id: statement for statement in STATEMENTS}
BY_TEXT = {statement.text: statement for statement in STATEMENTS}
ADDRESS = "https://example.org/post"


def test_the_same_bank_gives_the_same_pairs():
    first = training_pairs(STATEMENTS, BANK.stance_texts)
    assert pairs_digest(first) == pairs_digest(training_pairs(vetted_statements(load_bank(dialogue=False)),
                                                              load_bank(dialogue=False).stance_texts))


def test_content_words_drop_function_words_and_endings():
    assert content_words("The keys are computed from the tokens") == {"key", "comput", "token"}
    assert content_words("a query computes") == content_words("queries computing") == {"query", "comput"}


def test_a_truth_does_not_assert_the_misconception_it_shares_its_words_with():
    """"Both add the position vector to the token embedding" (a public tutorial's sentence, true) shares most
    of its words with the concatenation misconception; the pair must be there, labelled "does not assert"."""
    sentence = StanceText(text="Both add the position vector to the token embedding before the rest of the "
                               "model sees the input.", kind="true", source=ADDRESS)
    pairs = training_pairs(STATEMENTS, [sentence])
    labels = {pair.statement: pair.label for pair in pairs if pair.message == sentence.text}
    concatenated = BY_ID["misconception:positional-encoding-is-concatenated"].text
    assert labels.get(concatenated) == NOT_ASSERTS, labels
    assert all(BY_TEXT[statement].kind == "misconception" for statement in labels)


def test_a_public_question_does_not_assert_the_misconceptions_it_shares_words_with():
    question = StanceText(
        text="Why are the positional encodings added to the embeddings instead of concatenated?",
        kind="question", source=ADDRESS)
    asked = [pair for pair in training_pairs(STATEMENTS, [question]) if pair.message == question.text]
    assert len(asked) == 2 and {pair.label for pair in asked} == {NOT_ASSERTS}
    assert all(BY_TEXT[pair.statement].kind == "misconception" for pair in asked)
    concatenated = BY_ID["misconception:positional-encoding-is-concatenated"].text
    assert concatenated in {pair.statement for pair in asked}


def test_a_public_misconception_line_asserts_its_misconception_and_denies_its_correction():
    """Like the claim's own `states` phrasings: asserting the misconception, denying the correction, nothing
    else (its word neighbours are not labelled: it may assert a related misconception too)."""
    line = StanceText(text="The sine/cosine values are appended to the token's input embedding.",
                      kind="misconception", claim="positional-encoding-is-concatenated", source=ADDRESS)
    labels = {pair.statement: pair.label for pair in training_pairs(STATEMENTS, [line])
              if pair.message == line.text}
    assert labels == {BY_ID["misconception:positional-encoding-is-concatenated"].text: ASSERTS,
                      BY_ID["correction:positional-encoding-is-concatenated"].text: DENIES}
    unknown = StanceText(text=line.text, kind="misconception", claim="no-such-claim", source=ADDRESS)
    assert not [pair for pair in training_pairs(STATEMENTS, [unknown]) if pair.message == line.text]


def test_the_partial_label_only_pushes_down_p_asserts():
    """NOT_ASSERTS costs -log(1 - P(asserts)): nothing for a reading that does not assert, whichever of the
    other three it is; a full label costs the usual cross-entropy."""
    logits = torch.tensor([[-9.0, 4.0, -9.0, -9.0], [-9.0, -9.0, -9.0, 4.0], [3.0, 0.0, 0.0, 0.0]])
    partial = torch.tensor([NOT_ASSERTS] * 3)
    losses = [float(training_loss(logits[i:i + 1], partial[i:i + 1])) for i in range(3)]
    assert losses[0] < 1e-4 and losses[1] < 1e-4  # denies or unrelated: both fine
    p_asserts = torch.softmax(logits[2], dim=-1)[ASSERTS]
    assert abs(losses[2] - float(-torch.log1p(-p_asserts))) < 1e-5
    full = torch.tensor([DENIES])
    assert abs(float(training_loss(logits[2:], full))
               - float(torch.nn.functional.cross_entropy(logits[2:], full))) < 1e-5


def test_lexical_neighbours_never_pair_a_truth_with_its_own_misconception():
    """Its own opposite is a denial (taught by the `denies` phrasings); calling it unrelated would teach the
    model the opposite of the bank."""
    words = _Words(STATEMENTS)
    for statement in STATEMENTS:
        if statement.kind != "truth":
            continue
        for line in (statement.text, *statement.lines("states")):
            for neighbour in words.closest(line, "misconception", 1, besides=statement):
                same_claim = statement.claim_id is not None and neighbour.claim_id == statement.claim_id
                assert neighbour.id != statement.opposite and not same_claim, (line, neighbour.id)


def test_every_truth_phrasing_label_is_kept_over_a_neighbour_label():
    """A bank phrasing's own label wins over a generated one: no message is both asserting and unrelated to
    the same statement."""
    labels: dict[tuple[str, str], set[int]] = {}
    for pair in training_pairs(STATEMENTS, BANK.stance_texts):
        labels.setdefault((pair.message.lower(), pair.statement.lower()), set()).add(pair.label)
    assert all(len(found) == 1 for found in labels.values())
    assert any(ASSERTS in found for found in labels.values())


def _closest_by_plain_scan(text: str, count: int, besides=None) -> list[str]:
    """What `_Words.closest` must return, computed the slow, obvious way: Jaccard against every wording."""
    own = content_words(text)
    scored = []
    for index, statement in enumerate(STATEMENTS):
        if statement.kind != "misconception" or not own:
            continue
        same_claim = (besides is not None and statement.claim_id is not None
                      and statement.claim_id == besides.claim_id)
        if besides is not None and (statement.id in (besides.id, besides.opposite) or same_claim):
            continue
        wordings = [content_words(line) for line in (statement.text, *statement.lines("states"))]
        overlap = max(len(own & words) / len(own | words) for words in wordings)
        if overlap >= MIN_WORD_OVERLAP:
            scored.append((-overlap, index))
    return [STATEMENTS[index].id for _, index in sorted(scored)[:count]]


def test_the_word_index_finds_what_a_plain_scan_finds():
    """The index only skips wordings that share no word with the text; every text of the bank and of the
    public file gets the same neighbours, in the same order, as a scan of every wording."""
    words = _Words(STATEMENTS)
    truths = [(line, statement) for statement in STATEMENTS if statement.kind == "truth"
              for line in (statement.text, *statement.lines("states"))]
    public = [(text.text, None) for text in BANK.stance_texts]
    assert len(truths) > 300 and len(public) > 300
    for text, besides in truths + public:
        found = [statement.id for statement in words.closest(text, "misconception", 3, besides=besides)]
        assert found == _closest_by_plain_scan(text, 3, besides), text
