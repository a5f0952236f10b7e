"""The price table: exact costs in cents from dollars per million tokens, model names matched
with their dated variants, and a deployment's file laid over the bundled table."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from theazo.gateway.prices import PriceError, PriceTable, Tokens, UnknownModel

TABLE = """
as_of = "2026-01-01"
source = "https://example.test/prices"
[models."m-small"]
input = "0.15"
cached_input = "0.075"
output = "0.60"
[models."m-small-pro"]
input = 3
output = 15.5
[models."m-claude"]
input = "3.00"
cached_input = "0.30"
cache_write_input = "3.75"
output = "15.00"
"""


def test_a_cost_is_exact_in_cents() -> None:
    table = PriceTable.parse(TABLE)
    # 1,000 input of which 200 cached, 500 output:
    # (800 x 0.15 + 200 x 0.075 + 500 x 0.60) $/M = 435 $/M x 1e-6 = $0.000435 = 0.0435 cents
    cost = table.cost("m-small", Tokens(input=1000, output=500, cached=200))
    assert cost == Decimal("0.0435")
    assert table.cost_micros("m-small", Tokens(input=1000, output=500, cached=200)) == 43_500


def test_an_integer_or_float_price_is_taken_by_its_decimal_form() -> None:
    table = PriceTable.parse(TABLE)
    assert table.cost("m-small-pro", Tokens(input=1, output=1)) == Decimal("0.00185")
    # No cached price: cached tokens cost as input.
    assert table.cost("m-small-pro", Tokens(input=10, cached=10)) == Decimal("0.003")


def test_tokens_written_to_the_cache_cost_their_own_price() -> None:
    table = PriceTable.parse(TABLE)
    # 1,000 input: 200 read from the cache, 300 written to it, 500 plain; 100 output:
    # (500 x 3 + 200 x 0.30 + 300 x 3.75 + 100 x 15) $/M = 4,185 $/M = 0.4185 cents
    tokens = Tokens(input=1000, output=100, cached=200, written=300)
    assert table.cost("m-claude", tokens) == Decimal("0.4185")
    assert table.cost_micros("m-claude", tokens) == 418_500
    # Without a cache_write_input price, written tokens cost as input: 0.0015 + 0.0003 cents.
    assert table.cost("m-small-pro", Tokens(input=5, written=5)) == Decimal("0.0015")
    assert table.cost("m-small", Tokens(input=10, written=4, cached=6)) == Decimal("0.0001050")


def test_the_bundled_anthropic_models_write_the_cache_at_one_and_a_quarter_input() -> None:
    table = PriceTable.bundled()
    claudes = [name for name in table.models if name.startswith("claude")]
    assert len(claudes) >= 5
    for name in claudes:
        price = table.models[name]
        assert price.cache_write_input == price.input * Decimal("1.25"), name
    for name in ("gpt-4o", "gpt-5"):  # OpenAI charges no more for writing its cache
        assert table.models[name].cache_write_input == table.models[name].input


def test_a_dated_variant_is_priced_as_its_longest_matching_name() -> None:
    table = PriceTable.parse(TABLE)
    assert table.price_for("m-small-2025-01-01") == table.models["m-small"]
    assert table.price_for("m-small-pro-2025") == table.models["m-small-pro"]
    assert table.price_for("m-smaller") is None  # a prefix must end at a dash
    with pytest.raises(UnknownModel, match="--llm-prices"):
        table.cost("other", Tokens(input=1))


def test_the_bundled_table_is_dated_sourced_and_prices_common_models() -> None:
    table = PriceTable.bundled()
    assert table.as_of and table.source.startswith("https://")
    for model in ("gpt-4o-mini", "gpt-4o-2024-08-06", "claude-sonnet-4-5-20250929"):
        assert table.knows(model), model
    # gpt-4o-mini is not priced as gpt-4o
    assert table.price_for("gpt-4o-mini") != table.price_for("gpt-4o")


def test_a_file_adds_to_and_overrides_the_bundled_table(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text('as_of = "2030-01-01"\n[models."gpt-4o"]\ninput = "1"\noutput = "2"\n')
    table = PriceTable.load(path)
    assert table.as_of == "2030-01-01"
    assert table.cost("gpt-4o", Tokens(input=1_000_000)) == Decimal(100)
    assert table.knows("claude-3-5-haiku")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("models = [", "not TOML"),
        ('currency = "eur"', "bills in 'usd'"),
        ('[models."x"]\ninput = "1"', "no 'output'"),
        ('[models."x"]\ninput = "-1"\noutput = "1"', "not a price"),
        ('[models."x"]\ninput = "abc"\noutput = "1"', "not a number"),
        ('[models."x"]\ninput = true\noutput = "1"', "must be a number"),
        ('[models."x"]\ninput = "1"\noutput = "1"\nouput = "2"', "unknown keys"),
        ('[models."x"]\ninput = "nan"\noutput = "1"', "not a price"),
        ('[models."x"]\ninput = "1"\noutput = "1"\ncache_write_input = "-2"', "not a price"),
        ('[models."x"]\ninput = "1"\noutput = "1"\ncache_write = "2"', "unknown keys"),
    ],
)
def test_a_bad_table_is_refused_with_where_and_why(text: str, error: str) -> None:
    with pytest.raises(PriceError, match=error):
        PriceTable.parse(text)


def test_an_unreadable_file_is_a_price_error(tmp_path: Path) -> None:
    with pytest.raises(PriceError, match="cannot read"):
        PriceTable.load(tmp_path / "missing.toml")


def test_tokens_add_and_refuse_nonsense() -> None:
    assert Tokens(3, 2, 1) + Tokens(1, 1, 1) == Tokens(4, 3, 2)
    with pytest.raises(ValueError, match="part of the input"):
        Tokens(input=1, cached=2)
    with pytest.raises(ValueError, match="part of the input"):
        Tokens(input=3, cached=2, written=2)
    # Written tokens price a call; the wire and the store show input, output and cached.
    assert Tokens(5, 1, 1, written=2).as_json() == {"input": 5, "output": 1, "cached": 1}
    with pytest.raises(ValueError, match="negative"):
        Tokens(output=-1)
