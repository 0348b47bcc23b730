"""Tests of e2e/latency.py on console-consumer output written here, in the format run.sh makes.

Run: .venv/bin/python -m pytest e2e
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

LATENCY = Path(__file__).resolve().parents[1] / "latency.py"
sys.path.insert(0, str(LATENCY.parent))

import latency  # noqa: E402


def tick(exchange: str, received: str, created_ms: int) -> str:
    value = {"schema": 1, "product_id": "BTC-USD", "exchange_time": exchange, "receive_time": received}
    return f"tick CreateTime:{created_ms}\t{json.dumps(value)}"


def prediction(event: str, created_ms: int) -> str:
    value = {"schema": 1, "product_id": "BTC-USD", "event_time": event, "probability": 0.1}
    return f"prediction CreateTime:{created_ms}\t{json.dumps(value)}"


RECEIVED_MS = 1_775_337_223_000


def rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lines() -> list[str]:
    out = []
    for i, delay in enumerate([4, 6, 8, 30]):
        exchange = f"2026-04-05T00:00:0{i}.123456Z"
        received = RECEIVED_MS + 1000 * i
        out.append(tick(exchange, rfc3339(received), received + 1))
        out.append(prediction(exchange, received + delay))
    out.append(prediction("2026-04-05T00:00:09.000000Z", RECEIVED_MS))  # its tick was not read
    out.append("Processed a total of 5 messages")
    return out


def test_each_prediction_is_matched_to_its_tick_and_measured_from_its_receive_time():
    assert latency.latencies_ms(lines()) == pytest.approx([4.0, 6.0, 8.0, 30.0], abs=0.01)


def test_nanosecond_times_are_read():
    assert latency.parse_time("2026-04-05T00:00:00.123456789Z") == latency.parse_time("2026-04-05T00:00:00.123456Z")


def test_the_summary_reports_p50_p99_and_the_goal():
    text = latency.summary([4.0, 6.0, 8.0, 30.0])
    assert "| 4 | 6.0 ms | 30.0 ms | 30.0 ms |" in text
    assert "not met" in text
    assert "met." in latency.summary([1.0, 2.0])


def test_without_a_match_it_fails():
    result = subprocess.run(
        [sys.executable, str(LATENCY)],
        input="prediction CreateTime:1\t{}\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "no prediction" in result.stderr
