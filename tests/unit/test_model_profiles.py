"""Model profiles as data: lookup, prices, shutdown warnings and the request parameters. Pure."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from schemas.errors import ConfigError
from worker.model.params import (
    RequestShape,
    completion_budget,
    effort_for,
    optional_params,
    request_body,
)
from worker.model.profiles import (
    Price,
    estimate_cost_usd,
    load_table,
    shutdown_warning,
)

TABLE = load_table()
TODAY = date(2026, 11, 30)


def test_the_packaged_table_is_dated_and_names_its_source() -> None:
    assert TABLE.as_of == date(2026, 11, 30)
    assert "deprecations" in TABLE.source


def test_default_model_is_a_reasoning_model_with_its_list_prices() -> None:
    luna = TABLE.lookup("gpt-6-luna")
    assert luna is not None and luna.family == "reasoning"
    assert luna.price == Price(
        input=Decimal("0.10"),
        cached_input=Decimal("0.01"),
        output=Decimal("0.50"),
        cache_write=Decimal("0.125"),
        batch=Decimal("0.5"),
        flex=Decimal("0.5"),
    )
    assert luna.reasoning_efforts == ("none", "low", "medium", "high", "xhigh", "max")
    assert "temperature" not in luna.params and "prompt_cache_key" in luna.params


@pytest.mark.parametrize(
    ("model", "prefix"),
    [
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4.1-mini", "gpt-4.1-mini"),
        ("gpt-6-luna-2026-10-01", "gpt-6-luna"),
        ("llama3.1:8b", None),
        ("gpt-4omni", None),
    ],
)
def test_a_model_takes_the_profile_of_its_longest_prefix(model: str, prefix: str | None) -> None:
    profile = TABLE.lookup(model)
    assert (profile.prefix if profile else None) == prefix


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-6-luna", None),
        ("gpt-4o-mini", "shuts down on 2027-01-14 (in 45 days); set FINPIPE_MODEL=gpt-6-luna"),
        ("gpt-5-nano", "shuts down on 2026-12-11 (in 11 days)"),
        ("gpt-4.1-nano", "was shut down: calls will fail"),
        ("somebody-elses-model", None),
    ],
)
def test_start_up_warns_of_a_shutdown_within_sixty_days(model: str, expected: str | None) -> None:
    warning = shutdown_warning(model, TABLE.lookup(model), TODAY)
    if expected is None:
        assert warning is None
    else:
        assert warning is not None and expected in warning


def test_a_shutdown_further_away_than_sixty_days_is_not_announced() -> None:
    assert shutdown_warning("gpt-4o", TABLE.lookup("gpt-4o"), date(2026, 11, 1)) is None
    assert shutdown_warning("gpt-4o", TABLE.lookup("gpt-4o"), date(2026, 11, 15)) is not None


def test_cost_counts_cached_and_written_prompt_tokens_at_their_prices() -> None:
    luna = TABLE.lookup("gpt-6-luna")
    assert luna is not None
    price = luna.price
    # 1M uncached in + 1M out: $0.10 + $0.50
    assert estimate_cost_usd(price, 1_000_000, 1_000_000, 0) == pytest.approx(0.60)
    # half the prompt from the cache at $0.01
    assert estimate_cost_usd(price, 1_000_000, 0, 500_000) == pytest.approx(0.055)
    # half the prompt written to the cache at $0.125
    assert estimate_cost_usd(price, 1_000_000, 0, 0, 500_000) == pytest.approx(0.1125)
    assert estimate_cost_usd(price, 1_000_000, 1_000_000, 0, tier="batch") == pytest.approx(0.30)
    assert estimate_cost_usd(price, 1_000_000, 1_000_000, 0, tier="flex") == pytest.approx(0.30)
    assert estimate_cost_usd(None, 10, 10, 0) is None


def test_a_prices_file_replaces_and_extends_the_table(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(
        'as_of = 2026-12-01\nsource = "our contract"\n'
        '[models."gpt-6-luna"]\nfamily = "reasoning"\n'
        'params = ["reasoning_effort", "max_completion_tokens"]\n'
        'input = "0.08"\ncached_input = "0.008"\noutput = "0.40"\n'
        '[models."llama3.1"]\ninput = "0"\noutput = "0"\n'
    )
    table = load_table(path)
    luna = table.lookup("gpt-6-luna")
    assert luna is not None and luna.price is not None and luna.price.input == Decimal("0.08")
    llama = table.lookup("llama3.1:8b")
    assert llama is not None and llama.family == "classic"
    assert llama.params == frozenset({"temperature", "max_tokens"})
    assert table.lookup("gpt-4o") is not None
    assert table.source == "our contract"


def test_a_broken_prices_file_names_the_variable(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text('[models."x"]\ninput = "cheap"\noutput = "0"\n')
    with pytest.raises(ConfigError, match="FINPIPE_PRICES_FILE"):
        load_table(path)
    with pytest.raises(ConfigError, match="FINPIPE_PRICES_FILE"):
        load_table(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("n", "effort", "expected"),
    [(1, "none", 912), (20, "none", 8_512), (20, "medium", 16_704), (1, None, 912)],
)
def test_the_completion_budget_grows_with_the_batch_and_the_effort(
    n: int, effort: str | None, expected: int
) -> None:
    assert completion_budget(n, effort) == expected


def test_parameters_follow_the_profile() -> None:
    luna = TABLE.lookup("gpt-6-luna")
    assert optional_params(luna, n_snippets=2, effort="none", cache_key="k") == {
        "reasoning_effort": "none",
        "max_completion_tokens": 1_312,
        "prompt_cache_key": "k",
    }
    classic = TABLE.lookup("gpt-4o-mini")
    assert optional_params(classic, n_snippets=1, effort=None, cache_key="k") == {
        "temperature": 0,
        "max_completion_tokens": 912,
        "prompt_cache_key": "k",
    }
    assert optional_params(None, n_snippets=1, effort=None, cache_key="k") == {
        "temperature": 0,
        "max_tokens": 912,
    }
    flex = optional_params(luna, n_snippets=1, effort="none", cache_key=None, service_tier="flex")
    assert flex["service_tier"] == "flex"


def test_a_dropped_parameter_is_left_out_and_a_refused_token_limit_swapped() -> None:
    luna = TABLE.lookup("gpt-6-luna")
    dropped = frozenset({"reasoning_effort", "max_completion_tokens"})
    params = optional_params(luna, n_snippets=1, effort="high", cache_key=None, dropped=dropped)
    assert params == {"max_tokens": 912 + 16_384}
    both = dropped | {"max_tokens"}
    assert optional_params(luna, n_snippets=1, effort="high", cache_key=None, dropped=both) == {}


def test_an_effort_the_model_does_not_list_becomes_its_lowest() -> None:
    assert effort_for(TABLE.lookup("gpt-6-luna"), "none") == "none"
    assert effort_for(TABLE.lookup("gpt-5-mini"), "none") == "minimal"
    assert effort_for(TABLE.lookup("gpt-4o"), "high") is None
    assert effort_for(None, "high") is None


def test_a_parameter_is_dropped_once_per_run() -> None:
    shape = RequestShape("gpt-6-luna")
    assert shape.drop("temperature", "unsupported") is True
    assert shape.drop("temperature", "unsupported") is False
    assert shape.drop("messages", "bad") is False
    assert shape.dropped == frozenset({"temperature"})


def test_the_request_body_is_the_create_arguments() -> None:
    body = request_body(
        "gpt-6-luna", [{"role": "user", "content": "x"}], None, {"reasoning_effort": "none"}
    )
    assert body == {
        "model": "gpt-6-luna",
        "messages": [{"role": "user", "content": "x"}],
        "reasoning_effort": "none",
    }
