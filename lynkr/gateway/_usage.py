"""Usage reports: the `usage` projection's rows with an estimated cost from a price table.

Prices are US dollars per million tokens (input, output, cache_read, cache_write) per
backend model. A model's price is the entry whose name is the longest one contained in
the model name (so `databricks-claude-sonnet-4-5` takes `claude-sonnet-4-5`); a model
with no entry has no cost (null), and prompt-cache hits (provider `cache`) cost 0.
`lynkr.toml` adds or overrides entries:

    [prices."my-model"]
    input = 0.5
    output = 1.5
    cache_read = 0.05
    cache_write = 0.6

The defaults are list prices as published for the backends the README names, at the
time of writing: **an estimate**, not a bill.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lynkr._env import Env

__all__ = [
    "BY_CHOICES",
    "DEFAULT_PRICES",
    "Price",
    "PriceTable",
    "report_query",
    "usage_filters",
    "usage_report",
    "with_cost",
]


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cache_read: float = 0.0
    cache_write: float = 0.0

    def cost(self, row: Mapping[str, Any]) -> float:
        """The cost of a usage row's tokens."""
        return (self.input * int(row.get("input_tokens") or 0)
                + self.output * int(row.get("output_tokens") or 0)
                + self.cache_read * int(row.get("cache_read_input_tokens") or 0)
                + self.cache_write * int(row.get("cache_creation_input_tokens") or 0)) / 1e6


DEFAULT_PRICES: Mapping[str, Price] = {
    "claude-opus-4": Price(15.0, 75.0, 1.5, 18.75),
    "claude-opus-4-5": Price(5.0, 25.0, 0.5, 6.25),
    "claude-opus-4-6": Price(5.0, 25.0, 0.5, 6.25),
    "claude-sonnet-4": Price(3.0, 15.0, 0.3, 3.75),
    "claude-haiku-4-5": Price(1.0, 5.0, 0.1, 1.25),
    "claude-3-5-haiku": Price(0.8, 4.0, 0.08, 1.0),
    "gpt-4o": Price(2.5, 10.0, 1.25),
    "gpt-4o-mini": Price(0.15, 0.6, 0.075),
    "gpt-4.1": Price(2.0, 8.0, 0.5),
    "gpt-4.1-mini": Price(0.4, 1.6, 0.1),
    "gpt-5": Price(1.25, 10.0, 0.125),
    "gpt-5-mini": Price(0.25, 2.0, 0.025),
}
"""Estimated list prices (USD per million tokens), per model name fragment."""

_PRICE_FIELDS = {"input", "output", "cache_read", "cache_write"}


@dataclass(frozen=True, slots=True)
class PriceTable:
    """Prices per model name fragment (module docstring)."""

    prices: Mapping[str, Price] = field(default_factory=lambda: dict(DEFAULT_PRICES))

    def price(self, model: str, provider: str | None = None) -> Price | None:
        """The price of `model` (a prompt-cache hit's is 0), or None if unknown."""
        if provider == "cache":
            return Price(0.0, 0.0)
        exact = self.prices.get(model)
        if exact is not None:
            return exact
        lowered = model.lower()
        matches = [name for name in self.prices if name.lower() in lowered]
        return self.prices[max(matches, key=len)] if matches else None

    @classmethod
    def from_env(cls, env: Env) -> PriceTable:
        """The defaults updated by the `[prices]` table of lynkr.toml."""
        prices = dict(DEFAULT_PRICES)
        raw = env.toml.get("prices")
        if raw is None:
            return cls(prices)
        if not isinstance(raw, dict):
            env.problems.append("lynkr.toml [prices]: must be a table of tables")
            return cls(prices)
        for model, table in raw.items():
            where = f"lynkr.toml [prices.{model!r}]"
            if not isinstance(table, dict) or not {"input", "output"} <= set(table) \
                    or not set(table) <= _PRICE_FIELDS:
                env.problems.append(f"{where}: needs input and output (and optionally "
                                    "cache_read, cache_write), USD per million tokens")
                continue
            values = {k: v for k, v in table.items()}
            if not all(isinstance(v, int | float) and not isinstance(v, bool) and v >= 0
                       for v in values.values()):
                env.problems.append(f"{where}: prices must be numbers >= 0")
                continue
            prices[str(model)] = Price(**{k: float(v) for k, v in values.items()})
        return cls(prices)


def with_cost(rows: Sequence[Mapping[str, Any]], prices: PriceTable,
              by: Sequence[str]) -> list[dict[str, Any]]:
    """Each row plus `cost_usd` (an estimate; None when a model has no price).

    The cost of a row grouped without `model` is summed from the per-model rows it
    covers, so `rows_by_model` must be the same query grouped by `(*by, model,
    provider)`; here `rows` already are, and are folded back to `by`.
    """
    folded: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        price = prices.price(str(row.get("model")), row.get("provider"))
        group = tuple(row[name] for name in by)
        out = folded.get(group)
        if out is None:
            out = folded[group] = {name: row[name] for name in by} | {"cost_usd": 0.0}
        for name, value in row.items():
            if name not in by and name not in ("model", "provider"):
                out[name] = out.get(name, 0) + (value or 0)
        if price is None or out["cost_usd"] is None:
            out["cost_usd"] = None
        else:
            out["cost_usd"] += price.cost(row)
    for out in folded.values():
        if out["cost_usd"] is not None:
            out["cost_usd"] = round(out["cost_usd"], 6)
        if isinstance(out.get("latency_ms"), float):
            out["latency_ms"] = round(out["latency_ms"], 3)
    return list(folded.values())


def report_query(*, by: Sequence[str] = ("day",), key: str | None = None,
                 user: str | None = None, since: str | None = None,
                 until: str | None = None) -> tuple[str, list[str]]:
    """The SQL on the `usage` projection for a report grouped by `by` (per model and
    provider underneath, for the cost: fold its rows with `with_cost(rows, prices, by)`).

    Raises:
        ValueError: a grouping the projection does not know.
    """
    from eventstore.projections.usage import usage_query

    groups = tuple(dict.fromkeys((*by, "model", "provider")))
    return usage_query(by=groups, key=key, user=user, since=since, until=until)


def usage_report(store: Any, prices: PriceTable, *, by: Sequence[str] = ("day",),
                 key: str | None = None, user: str | None = None, since: str | None = None,
                 until: str | None = None) -> list[dict[str, Any]]:
    """The `usage` projection summed by `by` (e.g. `("day",)`), filtered, with cost.

    Args:
        store: anything with `query(sql, args) -> rows` over the projection tables (an
            `eventstore.projections.ProjectionStore`).

    Raises:
        ValueError: a grouping the projection does not know.
    """
    sql, args = report_query(by=by, key=key, user=user, since=since, until=until)
    return with_cost(store.query(sql, args), prices, by)


BY_CHOICES = ("day", "model", "key", "user", "provider")
"""What a usage report can be grouped by (`--by`, `?by=`)."""


def usage_filters(*, by: str | None, since: str | None, until: str | None) -> tuple[str, ...]:
    """Check a report's grouping and day range; returns the grouping as a tuple.

    Raises:
        InvalidRequestError: a grouping not in `BY_CHOICES`, or a day that is not
            `YYYY-MM-DD`, or `since` after `until`.
    """
    from datetime import date

    from lynkr.errors import InvalidRequestError

    chosen = by or "day"
    if chosen not in BY_CHOICES:
        raise InvalidRequestError(f"by: {chosen!r} is not one of {', '.join(BY_CHOICES)}")
    for name, value in (("since", since), ("until", until)):
        if value is None:
            continue
        try:
            date.fromisoformat(value)
        except ValueError:
            raise InvalidRequestError(f"{name}: {value!r} is not a day (YYYY-MM-DD)") from None
        if len(value) != 10:
            raise InvalidRequestError(f"{name}: {value!r} is not a day (YYYY-MM-DD)")
    if since is not None and until is not None and since > until:
        raise InvalidRequestError(f"since ({since}) is after until ({until})")
    return (chosen,)
