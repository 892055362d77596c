"""Figures from raw timestamps: percentiles, rates, and one table row per scenario."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of values; NaN when there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Delivery:
    """What a driven scenario delivered: latencies (s) of every (change, client) pair."""

    changes: int
    clients: int
    latencies: list[float]
    first_send: float
    last_send: float
    last_arrival: float
    errors: int = 0

    @property
    def expected(self) -> int:
        return self.changes * self.clients

    @property
    def lost(self) -> int:
        return self.expected - len(self.latencies)

    def ms(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000

    @property
    def changes_per_s(self) -> float:
        span = self.last_send - self.first_send
        return self.changes / span if span > 0 else math.nan

    @property
    def fragments_per_s(self) -> float:
        span = self.last_arrival - self.first_send
        return len(self.latencies) / span if span > 0 else math.nan


def pooled(rounds: Sequence[Delivery]) -> Delivery:
    """Several rounds of one scenario as one: latencies together, spans added up."""
    return Delivery(
        changes=sum(r.changes for r in rounds),
        clients=rounds[0].clients,
        latencies=[lat for r in rounds for lat in r.latencies],
        first_send=0.0,
        last_send=sum(r.last_send - r.first_send for r in rounds),
        last_arrival=sum(r.last_arrival - r.first_send for r in rounds),
        errors=sum(r.errors for r in rounds),
    )


def delivery(
    sends: dict[str, float], replies: Iterable[Mapping[str, Any]], *, errors: int = 0
) -> Delivery:
    """Join the driver's send times with the arrival times the load processes reported."""
    latencies: list[float] = []
    clients = 0
    last_arrival = 0.0
    for reply in replies:
        clients += int(reply["clients"])
        arrivals: dict[str, list[float]] = reply["arrivals"]
        for key, times in arrivals.items():
            sent = sends[key]
            latencies.extend(t - sent for t in times)
            if times:
                last_arrival = max(last_arrival, max(times))
    return Delivery(
        changes=len(sends),
        clients=clients,
        latencies=latencies,
        first_send=min(sends.values(), default=0.0),
        last_send=max(sends.values(), default=0.0),
        last_arrival=last_arrival,
        errors=errors,
    )


@dataclass
class Row:
    scenario: str
    target: str
    p50: str = "—"
    p95: str = "—"
    p99: str = "—"
    throughput: str = "—"
    loss: str = "—"
    memory: str = "—"
    verdict: str = "—"
    notes: list[str] = field(default_factory=list)


def fmt_ms(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def loss_text(d: Delivery) -> str:
    return f"{d.lost} / {d.expected}"


def throughput_text(d: Delivery) -> str:
    return f"{d.changes_per_s:.1f} changes/s, {d.fragments_per_s:.0f} fragments/s"


def delivery_row(scenario: str, target: str, d: Delivery) -> Row:
    return Row(
        scenario=scenario,
        target=target,
        p50=fmt_ms(d.ms(50)),
        p95=fmt_ms(d.ms(95)),
        p99=fmt_ms(d.ms(99)),
        throughput=throughput_text(d),
        loss=loss_text(d),
    )


HEADER = ["scenario", "target", "p50", "p95", "p99", "throughput", "loss", "memory", "result"]


def table(rows: Sequence[Row]) -> str:
    """A Markdown table, readable as plain text too."""
    cells = [HEADER] + [
        [r.scenario, r.target, r.p50, r.p95, r.p99, r.throughput, r.loss, r.memory, r.verdict]
        for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(HEADER))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
