"""What the framework adapters charge a model response for, from the frameworks' own usage
types: the prompt cache's reads and writes are both part of the input, and the writes are
priced apart (Anthropic bills them at 1.25 times the input price)."""

from __future__ import annotations

from decimal import Decimal

from pydantic_ai.usage import RequestUsage

from theazo.core.usage import Tokens
from theazo.gateway.prices import PriceTable
from theazo.integrations import langgraph, pydantic_ai

PRICES = PriceTable.parse(
    '[models."claude"]\ninput = "3"\noutput = "15"\ncached_input = "0.3"\n'
    'cache_write_input = "3.75"\n'
)


def test_pydantic_ai_usage_keeps_the_cache_writes() -> None:
    usage = RequestUsage(
        input_tokens=1_000, output_tokens=50, cache_read_tokens=200, cache_write_tokens=300
    )
    tokens = pydantic_ai.tokens_of(usage)
    assert tokens == Tokens(input=1_000, output=50, cached=200, written=300)
    # In cents: 500 plain x 3 + 200 read x 0.3 + 300 written x 3.75 + 50 out x 15 dollars a
    # million tokens, 3,435 dollars a million, x 100 cents / 1,000,000.
    assert PRICES.cost("claude", tokens) == Decimal("0.3435")


def test_langchain_usage_keeps_the_cache_writes() -> None:
    usage = {
        "input_tokens": 1_000,
        "output_tokens": 50,
        "total_tokens": 1_050,
        "input_token_details": {"cache_read": 200, "cache_creation": 300},
    }
    assert langgraph.tokens_of(usage) == Tokens(input=1_000, output=50, cached=200, written=300)


def test_counts_past_the_input_are_held_to_it() -> None:
    usage = {"input_tokens": 100, "input_token_details": {"cache_read": 80, "cache_creation": 50}}
    assert langgraph.tokens_of(usage) == Tokens(input=100, output=0, cached=80, written=20)
    assert langgraph.tokens_of({}) == Tokens()
