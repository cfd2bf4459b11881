"""Keys are computed from context: same word, different keys; one key per token per KV head per layer."""

from __future__ import annotations

import dataclasses

import pytest

from kqv_demo import numerics
from kqv_demo.demos import DEMOS
from kqv_demo.errors import UserInputError
from kqv_demo.runtime import Runtime

DEMO = DEMOS["keys-are-computed"]


@pytest.fixture(scope="module")
def result(runtime: Runtime):
    return DEMO.run(runtime)


def test_layer_zero_keys_depend_on_the_token_alone(result):
    assert result.cosine_by_layer[0].min() > 0.9999


def test_later_keys_depend_on_the_context(result):
    for layer in range(2, result.n_layers):
        assert result.cosine_by_layer[layer].min() < 0.999, layer


def test_the_layer_10_range_quoted_in_the_bank(result):
    # content/claims/keys-are-stored-concept-vectors.yaml: "cosine 0.85-0.94 across the 3 key/value heads"
    at_10 = result.cosine_by_layer[10]
    assert len(at_10) == 3
    # the range holds at two decimals on every CPU: the ends are clear of the rounding points by more than
    # what rounding can do to a cosine of two deep states (2·STATE_NOISE)
    noise = 2 * numerics.STATE_NOISE
    assert 0.845 + noise < float(at_10.min()) and float(at_10.max()) < 0.945 - noise


def test_one_key_per_token_per_kv_head_per_layer(runtime: Runtime, result):
    config = runtime.smollm2.model.config
    tokens = len(runtime.tokenize(DEMO.default_prompt)[0])
    assert result.tokens_in_a == tokens
    assert result.keys_in_a == tokens * config.num_key_value_heads * config.num_hidden_layers
    assert result.key_weight_shapes == [
        (config.num_key_value_heads * config.head_dim, config.hidden_size)] * config.num_hidden_layers
    assert result.vocabulary_tables == ["model.embed_tokens.weight"]


def test_a_word_missing_from_a_sentence_is_a_clear_error(runtime: Runtime):
    with pytest.raises(UserInputError, match="not a single token"):
        DEMO.run(runtime, word="zebra")


def _layers_by_mark(spec: dict) -> dict[str, dict]:
    return {layer["mark"]["type"]: layer for layer in spec["layer"]}


def test_the_chart_marks_the_chosen_layer(runtime: Runtime):
    run = DEMO.run(runtime, layer=7)
    spec = DEMO.chart(run).to_dict()
    marks = _layers_by_mark(spec)
    rule, label = marks["rule"], marks["text"]
    assert rule["encoding"]["x"]["field"] == "layer"
    assert spec["datasets"][rule["data"]["name"]] == [{"layer": 7, "label": "layer 7"}]
    assert label["data"] == rule["data"] and label["encoding"]["text"]["field"] == "label"
    # The x axis spans exactly the layers shown, 0 to 29, not a rounded-up 30.
    x = marks["line"]["encoding"]["x"]
    assert x["scale"] == {"domain": [0, run.n_layers - 1], "nice": False}
    lines = spec["datasets"][marks["line"]["data"]["name"]]
    assert {row["layer"] for row in lines} == set(range(run.n_layers))


def test_the_layer_label_stays_inside_the_plot_at_the_last_layer(result):
    last = dataclasses.replace(result, layer=result.n_layers - 1)
    assert _layers_by_mark(DEMO.chart(last).to_dict())["text"]["mark"]["align"] == "right"
    assert _layers_by_mark(DEMO.chart(result).to_dict())["text"]["mark"]["align"] == "left"


def test_the_chart_labels_every_layer(result):
    """Issue #14, 12: the quiz's feedback chart labelled every other layer, and the question names one."""
    lines = DEMOS["keys-are-computed"].chart(result).to_dict()["layer"][0]
    axis = lines["encoding"]["x"]["axis"]
    assert axis["values"] == list(range(result.n_layers)) and axis["labelOverlap"] is True
