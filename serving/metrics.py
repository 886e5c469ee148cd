"""Prometheus metrics (prometheus_client) under TF Serving's names, served at the path of
--monitoring_config_file. TF Serving's request_count and request_latency (in microseconds, on
its buckets), labelled as it labels them plus the API and entrypoint on the count; SavedModel
load attempts; the versions' states and the served version. Each
server has its own registry, so servers in one process (tests) do not share counts.

prometheus_client writes a counter with a `_total` suffix (and a `_created` sample), where
TF Serving's exporter writes the bare name: a query for `:tensorflow:serving:request_count`
reads `:tensorflow:serving:request_count_total` here."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# TF Serving's request latency: microseconds, buckets Exponential(10, 1.8, 33), i.e. upper bounds
# 10 µs × 1.8^i for i in 0..32 (~20 minutes) and +Inf (servables/tensorflow/util.cc's request_latency;
# monitoring::Buckets::Exponential). The same unit and buckets here, so TF Serving's dashboards and
# alerts read this server's histogram unchanged.
LATENCY_BUCKETS_US = tuple(10 * 1.8 ** i for i in range(33))

# The API label's values. TF Serving's own: "Predict", "Classify", "Regress" over gRPC
# (prediction_service_impl.cc) and "predict", "classify", "regress" over REST (http_server.cc
# passes the verb http_rest_api_handler.cc dispatched on). This server also counts what TF
# Serving does not time: "GetModelMetadata" and "GetModelStatus" over gRPC, "metadata" and
# "status" over REST; "" is a request that named no API (a malformed path, or one the transport
# refused), as ParseModelInfo leaves the method empty for it.
REST_APIS = ("predict", "classify", "regress", "metadata", "status")


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, model_name: str):
        self.model_name = model_name
        self.registry = CollectorRegistry()
        self.requests = Counter(":tensorflow:serving:request_count", "Requests by model, API, entrypoint and "
                                "status code.", ["model_name", "API", "entrypoint", "status"], registry=self.registry)
        self.latency = Histogram(":tensorflow:serving:request_latency", "Distribution of wall time (in microseconds) "
                                 "for Tensorflow Serving request.", ["model_name", "API", "entrypoint"],
                                 buckets=LATENCY_BUCKETS_US, registry=self.registry)
        self.loads = Counter(":tensorflow:cc:saved_model:load_attempt_count", "SavedModel load attempts by path and "
                             "status.", ["model_path", "status"], registry=self.registry)
        self.versions = Gauge(":tensorflow:serving:model_version_state", "1 for each version's current state "
                              "(START, LOADING, AVAILABLE, UNLOADING, END).", ["model_name", "version", "state"],
                              registry=self.registry)
        self.served = Gauge("fer_serving_served_version", "The version requests without a version get.",
                            ["model_name"], registry=self.registry)

    def record(self, api: str, entrypoint: str, status: str, seconds: float) -> None:
        """One request: counted, and when it succeeded, its latency in microseconds, as TF
        Serving records it (an integer count of them)."""
        self.requests.labels(self.model_name, api, entrypoint, status).inc()
        if status == "OK":
            self.latency.labels(self.model_name, api, entrypoint).observe(int(seconds * 1e6))

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
