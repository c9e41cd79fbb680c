"""Prometheus metrics for ``/metrics``.

One :class:`Metrics` object per app, on its own collector registry, so tests
and several apps in one process never share counters. Task counts by status
are read from the store at scrape time, so every replica reports the truth.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from artifactd.store import builds

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_DURATION_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600)


class _TaskCollector(Collector):
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "artifactd_build_tasks",
            "Build tasks in the store, by status",
            labels=["status"],
        )
        with self._sessions() as session:
            counts = dict(
                session.execute(
                    select(builds.BuildTask.status, func.count()).group_by(
                        builds.BuildTask.status
                    )
                ).all()
            )
        for status in builds.TASK_STATUSES:
            family.add_metric([status], counts.get(status, 0))
        yield family


class Metrics:
    def __init__(self, sessions: sessionmaker[Session] | None = None) -> None:
        self.registry = CollectorRegistry()
        self.builds_finished = Counter(
            "artifactd_builds_finished",
            "Builds that reached an end state",
            ["status"],
            registry=self.registry,
        )
        self.build_seconds = Histogram(
            "artifactd_build_duration_seconds",
            "Time from claim to SUCCESS",
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )
        self.layers_converted = Counter(
            "artifactd_layers_converted",
            "Layers converted to eStargz",
            registry=self.registry,
        )
        self.layer_bytes = Counter(
            "artifactd_layer_bytes",
            "Compressed layer bytes through conversion",
            ["direction"],
            registry=self.registry,
        )
        if sessions is not None:
            self.registry.register(_TaskCollector(sessions))

    def render(self) -> bytes:
        return generate_latest(self.registry)
