"""Prometheus metrics of a station on a local port (``metrics_port``): read from the agent's
counters at scrape time, so there is one source of truth."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from edge_agent.agent import EdgeAgent


class _AgentCollector:
    def __init__(self, agent: EdgeAgent) -> None:
        self.agent = agent

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        station = self.agent.settings.station_id
        counters, alarms = self.agent.heartbeat()
        values = dict(counters)
        gauges = {"fps", "decode_ms", "outbox_depth"}
        for name, value in values.items():
            if name.startswith("rejects_"):
                continue
            family: Any = (
                GaugeMetricFamily(f"yima_edge_{name}", f"station {name}", labels=["station"])
                if name in gauges
                else CounterMetricFamily(f"yima_edge_{name}", f"station {name}", labels=["station"])
            )
            family.add_metric([station], value)
            yield family
        rejects = CounterMetricFamily(
            "yima_edge_rejects", "items rejected, by reason", labels=["station", "reason"]
        )
        for name, value in values.items():
            if name.startswith("rejects_"):
                rejects.add_metric([station, name.removeprefix("rejects_")], value)
        yield rejects
        active = GaugeMetricFamily(
            "yima_edge_alarm", "1 while an alarm is active", labels=["station", "alarm"]
        )
        for alarm in alarms:
            active.add_metric([station, alarm], 1.0)
        yield active


def serve_metrics(agent: EdgeAgent, port: int, host: str = "127.0.0.1") -> Callable[[], None]:
    """Serve /metrics; returns a function that stops the server."""
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry()
    registry.register(_AgentCollector(agent))
    server, thread = start_http_server(port, addr=host, registry=registry)

    def stop() -> None:
        server.shutdown()
        thread.join(timeout=5)

    return stop
