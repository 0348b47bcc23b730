"""Tick → prediction latency from what two Kafka console consumers printed (stdin).

Each line is `tick CreateTime:<ms>\\t<tick JSON>` or `prediction CreateTime:<ms>\\t<prediction
JSON>` (`kafka-console-consumer.sh --property print.timestamp=true`, prefixed by e2e/run.sh).
A prediction is about the tick of its product whose exchange time is the prediction's event
time; its latency is the prediction record's create time (when the predictor handed it to its
producer, in milliseconds) minus the tick's receive time (when the ingestor took it, before
publishing it to the raw topic). Both clocks are the node's: run it on a one-node cluster.

Prints a Markdown summary (count, p50, p99, max against the 20 ms p99 goal) and exits 1 when
no prediction could be matched to its tick.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from datetime import datetime

GOAL_P99_MS = 20.0


def parse_time(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 time as the workloads write it (µs or ns)."""
    text = text.replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits) :]
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    return datetime.fromisoformat(text).timestamp()


def records(lines: Iterable[str]) -> tuple[dict, list[tuple[tuple[str, float], float]]]:
    """Ticks by (product, exchange time) → receive time, and predictions as ((product, event time), create time)."""
    ticks: dict[tuple[str, float], float] = {}
    predictions = []
    for line in lines:
        kind, _, rest = line.strip().partition(" ")
        stamp, _, value = rest.partition("\t")
        if kind not in ("tick", "prediction") or not stamp.startswith("CreateTime:"):
            continue
        try:
            created = int(stamp.removeprefix("CreateTime:")) / 1000
            record = json.loads(value)
            if kind == "tick":
                key = (record["product_id"], parse_time(record["exchange_time"]))
                ticks.setdefault(key, parse_time(record["receive_time"]))
            else:
                predictions.append(((record["product_id"], parse_time(record["event_time"])), created))
        except (ValueError, KeyError, TypeError):
            continue  # not a record of the expected layout
    return ticks, predictions


def latencies_ms(lines: Iterable[str]) -> list[float]:
    ticks, predictions = records(lines)
    return sorted((created - ticks[key]) * 1000 for key, created in predictions if key in ticks)


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted values."""
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[int(rank) - 1]


def summary(values: list[float]) -> str:
    p50, p99 = percentile(values, 50), percentile(values, 99)
    verdict = "met" if p99 < GOAL_P99_MS else "not met"
    return (
        f"| predictions matched | p50 | p99 | max |\n|---|---|---|---|\n"
        f"| {len(values)} | {p50:.1f} ms | {p99:.1f} ms | {values[-1]:.1f} ms |\n\n"
        f"p99 goal < {GOAL_P99_MS:.0f} ms: {verdict}."
    )


def main() -> int:
    values = latencies_ms(sys.stdin)
    if not values:
        print("no prediction could be matched to its tick", file=sys.stderr)
        return 1
    print(summary(values))
    return 0


if __name__ == "__main__":
    sys.exit(main())
