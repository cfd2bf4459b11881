"""Different objectives, the same neighbours: SmolLM2 and MiniLM agree on which words are close."""

from __future__ import annotations

import math
import re

import altair as alt
import numpy as np
import pytest
import torch
import vl_convert

from kqv_demo import numerics
from kqv_demo.demos import shared_neighbours
from kqv_demo.demos.shared_neighbours import DEMO, MAX_WIDTH, PREFIX, mutual_alignment, nearest, spelling_similarity
from kqv_demo.errors import UserInputError
from kqv_demo.runtime import Runtime


@pytest.fixture(scope="module")
def result(runtime: Runtime):
    return DEMO.run(runtime)


def test_the_two_models_share_far_more_neighbours_than_chance_or_spelling(result):
    assert result.n_items == 25 and result.k == 4
    assert result.alignment > result.chance_p99 + 0.3
    assert result.alignment > result.spelling_alignment + 0.3
    assert shared_neighbours.status(result)[0]


def test_both_models_group_the_words_as_given_and_spelling_does_not(result):
    assert result.same_group_smollm2 > 0.8 and result.same_group_minilm > 0.8
    assert result.same_group_spelling < 0.5


def test_the_agreement_holds_at_every_layer_from_the_token_embeddings_on(runtime: Runtime, result):
    assert len(result.alignment_by_layer) == runtime.smollm2.shape.n_layers + 1
    assert (result.alignment_by_layer > result.chance_p99).all()
    assert result.alignment == result.alignment_by_layer[result.layer + 1]


def test_chance_is_the_share_expected_for_random_neighbours(result):
    assert result.chance == pytest.approx(result.k / (result.n_items - 1), abs=0.01)
    assert result.chance < result.chance_p99 < 0.5


def test_each_word_is_read_from_its_own_tokens_only(runtime: Runtime, result):
    """The packed pass gives each word the hidden state it has when read alone."""
    word = "Brazil"
    index = result.items.index(word)
    alone = runtime.trace(f"{PREFIX} {word}", names_filter=lambda name: name == f"blocks.{result.layer}.resid_post")
    prefix_tokens = len(runtime.tokenize(PREFIX)[0])
    state_alone = alone[f"blocks.{result.layer}.resid_post"][prefix_tokens:].double().mean(0)
    packed = shared_neighbours._hidden_states(runtime, result.items)[result.layer + 1, index]
    # another pass (packed, other kernel blocking): within STATE_NOISE of the state's size on every CPU
    difference = float((torch.from_numpy(packed) - state_alone).norm())
    assert difference <= numerics.STATE_NOISE * float(state_alone.norm())


def test_mutual_alignment_is_one_for_the_same_space_whatever_the_order():
    rng = np.random.default_rng(1)
    points = rng.normal(size=(12, 5))
    similarity = points @ points.T
    assert mutual_alignment(similarity, similarity, 3) == 1.0
    assert mutual_alignment(similarity, 2 * similarity + 1, 3) == 1.0, "a monotone rescaling keeps the neighbours"
    order = rng.permutation(12)
    shuffled = similarity[np.ix_(order, order)]
    back = np.argsort(order)
    assert mutual_alignment(similarity, shuffled[np.ix_(back, back)], 3) == 1.0
    assert nearest(similarity, 3).shape == (12, 3)
    assert all(i not in row for i, row in enumerate(nearest(similarity, 3).tolist())), \
        "an item is not its own neighbour"


def test_the_spelling_control_only_knows_letters():
    similarity = spelling_similarity(["cat", "cats", "dog"])
    assert similarity[0, 0] == 1.0
    assert similarity[0, 1] > 0.3 and similarity[0, 2] == 0.0


def test_words_in_one_group_give_no_group_share_and_the_text_says_nothing_of_groups(runtime: Runtime):
    result = DEMO.run(runtime, "cat, dog, horse, red, blue, green, France, Spain", layer=10, neighbours=2)
    assert result.groups == [0] * 8 and math.isnan(result.same_group_smollm2)
    text = shared_neighbours.explain(result)
    assert "own group" not in text and "“cat” is nearest to" in text


@pytest.mark.parametrize(
    ("prompt", "params", "message"),
    [
        ("cat, dog, horse", {}, "at least 6 words"),
        ("cat, dog, horse, cow, sheep, Cat", {}, "appears twice"),
        (", ".join(f"w{i}" for i in range(61)), {}, "at most 60"),
        ("cat, dog, horse, cow, sheep, " + "x" * 41, {}, "characters"),
        ("cat, dog, horse, cow, sheep, goat", {"neighbours": 5}, "at most 4 neighbours"),
        ("cat, dog, horse, cow, sheep, goat", {"layer": 30}, "Layer 30 is out of range"),
    ],
)
def test_bad_input_gets_a_clear_message(runtime: Runtime, prompt, params, message):
    with pytest.raises(UserInputError, match=message):
        DEMO.run(runtime, prompt, **params)


def _rendered(chart: alt.TopLevelMixin) -> tuple[float, list[str]]:
    """The chart's width in px and its texts, drawn as the app draws it (autosize "pad")."""
    svg = vl_convert.vegalite_to_svg(chart.properties(autosize=alt.AutoSizeParams(type="pad")).to_json())
    return float(re.search(r'<svg[^>]* width="([\d.]+)"', svg).group(1)), re.findall(r"<text[^>]*>([^<]*)</text>", svg)


def test_chart_headline_and_explanation_describe_this_run(result):
    spec = DEMO.chart(result).to_dict()
    maps = spec["vconcat"][0]["hconcat"]
    assert len(maps) == 2
    words = {row["word"] for row in spec["datasets"][maps[0]["data"]["name"]]}
    assert "1 cat" in {w.strip() for w in words} and len(words) == result.n_items
    headline = dict(DEMO.headline(result))
    assert headline["Shared nearest neighbours"] == f"{result.alignment:.0%}"
    text = DEMO.explain(result)
    assert f"{result.alignment:.0%}" in text and f"{result.spelling_alignment:.0%}" in text
    assert "Huh et al. (2024)" in DEMO.details(result)


def test_both_maps_share_one_colour_scale_covering_both(result):
    maps = DEMO.chart(result).to_dict()["vconcat"][0]
    assert maps["resolve"]["scale"]["color"] == "shared"
    low, high = maps["hconcat"][0]["encoding"]["color"]["scale"]["domain"]
    assert all(m["encoding"]["color"]["scale"]["domain"] == [low, high] for m in maps["hconcat"])
    off_diagonal = ~np.eye(result.n_items, dtype=bool)
    for similarity in (result.smollm2_similarity, result.minilm_similarity):
        assert low <= similarity[off_diagonal].min() and similarity[off_diagonal].max() <= high
    _, texts = _rendered(DEMO.chart(result))
    assert texts.count("cosine (both maps)") == 1, "one legend for both maps"


def _assert_fits_with_every_label_whole(result):
    width, texts = _rendered(DEMO.chart(result))
    assert width <= MAX_WIDTH
    labels = [f"{i + 1} {item}" for i, item in enumerate(result.items)]
    assert all(texts.count(label) == 4 for label in labels), "each word on both axes of both maps"
    assert "chance (99th percentile of shuffles)" in texts
    assert not any("…" in text for text in texts)


def test_the_chart_fits_the_app_column_with_every_label_whole(result):
    _assert_fits_with_every_label_whole(result)


@pytest.mark.parametrize(
    "prompt",
    [", ".join(f"word{i}" for i in range(60)), "cat, dog, horse; international space station, bicycle, car, train"],
)
def test_many_or_long_words_stack_the_maps_and_still_fit(runtime: Runtime, prompt):
    result = DEMO.run(runtime, prompt, neighbours=2)
    assert "vconcat" in DEMO.chart(result).to_dict()["vconcat"][0]
    _assert_fits_with_every_label_whole(result)


def test_the_vectorised_shuffles_equal_relabelling_one_shuffle_at_a_time():
    rng = np.random.default_rng(3)
    a, b = (rng.normal(size=(15, 15)) for _ in range(2))
    a, b = a + a.T, b + b.T
    fast = shared_neighbours._shuffled_alignments(a, b, 3, 50)
    relabel = np.argsort(np.random.default_rng(0).random((50, 15)), axis=1)  # the same draws
    slow = [mutual_alignment(a, b[np.ix_(order, order)], 3) for order in relabel]
    assert np.allclose(fast, slow)


def test_single_word_groups_give_no_group_share(runtime: Runtime):
    result = DEMO.run(runtime, "cat; dog; horse; cow; sheep; goat", layer=10, neighbours=2)
    assert math.isnan(result.same_group_smollm2) and "own group" not in shared_neighbours.explain(result)
