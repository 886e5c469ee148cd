"""Prometheus metrics (prometheus_client) under TF Serving's names, served at the path of
--monitoring_config_file. TF Serving's request_count and request_latency, labelled as it
labels them plus the API and entrypoint on the count; the served and loaded versions. Each
server has its own registry, so servers in one process (tests) do not share counts.

prometheus_client writes a counter with a `_total` suffix (and a `_created` sample), where
TF Serving's exporter writes the bare name: a query for `:tensorflow:serving:request_count`
reads `:tensorflow:serving:request_count_total` here."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# TF Serving's request latency buckets are exponential from 10 µs (factor 1.8, 33 buckets); the
# same, in seconds as Prometheus prefers, from 0.1 ms.
_LATENCY_BUCKETS = tuple(1e-4 * 1.8 ** i for i in range(24))


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, model_name: str):
        self.model_name = model_name
        self.registry = CollectorRegistry()
        self.requests = Counter(":tensorflow:serving:request_count", "Requests by model, API, entrypoint and "
                                "status code.", ["model_name", "API", "entrypoint", "status"], registry=self.registry)
        self.latency = Histogram(":tensorflow:serving:request_latency", "Latency of successful requests, seconds.",
                                 ["model_name", "API", "entrypoint"], buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.loads = Counter(":tensorflow:cc:saved_model:load_attempt_count", "SavedModel load attempts by path and "
                             "status.", ["model_path", "status"], registry=self.registry)
        self.versions = Gauge(":tensorflow:serving:model_version_state", "1 for each version's current state "
                              "(START, LOADING, AVAILABLE, UNLOADING, END).", ["model_name", "version", "state"],
                              registry=self.registry)
        self.served = Gauge("fer_serving_served_version", "The version requests without a version get.",
                            ["model_name"], registry=self.registry)

    def record(self, api: str, entrypoint: str, status: str, seconds: float) -> None:
        self.requests.labels(self.model_name, api, entrypoint, status).inc()
        if status == "OK":
            self.latency.labels(self.model_name, api, entrypoint).observe(seconds)

    def version_loaded(self, store, version_path: str, ok: bool) -> None:
        """ModelStore.on_load: the attempt, the versions' states and the served version."""
        self.loads.labels(version_path, "success" if ok else "fail").inc()
        self.versions.clear()
        for version, state in store.states():
            self.versions.labels(store.model_name, str(version), state.state).set(1)
        current = store.current()
        if current is not None:
            self.served.labels(store.model_name).set(current.version)

    def page(self) -> bytes:
        return generate_latest(self.registry)
