"""Results: one ``Rep`` per repetition, the median over repetitions, the table and the JSON."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Rep:
    """One repetition of one scenario against one provider."""

    rate: float  # successful requests (or flows) per second
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_percent: float  # server CPU time / wall time; 100 = one core
    cpu_ms: float  # server CPU time per successful request (or flow)
    rss_mib: float  # peak resident set of the (largest) worker process so far
    seconds: float  # the measured window


@dataclass
class Result:
    scenario: str
    provider: str
    reps: list[Rep] = field(default_factory=list)
    failure: str | None = None

    def median(self, name: str) -> float:
        values = [getattr(rep, name) for rep in self.reps]
        return statistics.median(values) if values else math.nan


METRICS = (
    ("rate", "req/s", "{:.1f}"),
    ("p50_ms", "p50 ms", "{:.1f}"),
    ("p99_ms", "p99 ms", "{:.1f}"),
    ("cpu_percent", "CPU %", "{:.0f}"),
    ("cpu_ms", "CPU ms/req", "{:.2f}"),
    ("rss_mib", "RSS MiB", "{:.0f}"),
)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


def ratio(ours: float, node: float) -> str:
    if math.isnan(ours) or math.isnan(node) or node == 0:
        return "-"
    return f"{ours / node:.2f}"


def table(results: list[Result]) -> str:
    """Rows per scenario and provider, medians of the repetitions; for our provider each figure
    is followed by its ratio to the node reference's, ``(ours/node)``."""
    reference = {r.scenario: r for r in results if r.provider == "node" and r.reps}
    header = ["scenario", "provider", *(label for _, label, _ in METRICS), "errors"]
    rows = []
    for result in results:
        if not result.reps:
            rows.append([result.scenario, result.provider, *(["-"] * len(METRICS)), "FAILED"])
            continue
        node = reference.get(result.scenario)
        cells = []
        for name, _label, fmt in METRICS:
            value = result.median(name)
            cell = fmt.format(value)
            if node is not None and result.provider != "node":
                cell += f" ({ratio(value, node.median(name))})"
            cells.append(cell)
        errors = sum(rep.errors for rep in result.reps)
        rows.append([result.scenario, result.provider, *cells, str(errors)])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return (
            "| "
            + " | ".join(
                cell.ljust(widths[i]) if i < 2 else cell.rjust(widths[i])
                for i, cell in enumerate(row)
            )
            + " |"
        )

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def write_json(path: Path, settings: dict[str, Any], results: list[Result]) -> None:
    document = {
        "settings": settings,
        "results": [
            {
                **asdict(result),
                "median": {name: result.median(name) for name, _, _ in METRICS},
            }
            for result in results
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
