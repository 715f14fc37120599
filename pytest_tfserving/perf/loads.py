"""What the handle's load configs carry from a server (its Prometheus latency), and the one place
their resource samplers are closed."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from pytest_tfserving.load.config import LoadConfig
from pytest_tfserving.load.server_latency import ServerLatencySnapshot
from pytest_tfserving.metrics.prometheus import PrometheusScraper
from pytest_tfserving.perf.context import Server
from pytest_tfserving.perf.crashes import crash_explains_errors
from pytest_tfserving.serving.metric_labels import Method, Protocol, request_latency_labels


def server_latency_source(
    server: Server, model_name: str, protocol: Protocol = "grpc", method: Method = "predict"
) -> Callable[[], ServerLatencySnapshot] | None:
    """A callable reading the server's cumulative Prometheus request_latency of ``model_name``'s
    ``method`` requests over ``protocol``: the load's own series, not the readiness and metadata GETs
    TF Serving records beside them (``serving.metric_labels``)."""
    url = server.endpoints.prometheus_url
    if not url:
        return None
    scraper = PrometheusScraper(url, labels=request_latency_labels(model_name, protocol, method))

    def snapshot() -> ServerLatencySnapshot:
        state = scraper.scrape()
        return tuple(zip(state.bounds, state.cumulative, strict=True)), state.count, state.sum

    return snapshot


@contextlib.contextmanager
def open_loads(make: Callable[[Server], LoadConfig], *servers: Server) -> Iterator[tuple[LoadConfig, ...]]:
    """One LoadConfig per server (``make``), their resource samplers closed on the way out whatever
    happens; an error while making them is explained by a crashed server."""
    with contextlib.ExitStack() as stack:
        configs = []
        with crash_explains_errors(*servers):
            for server in servers:
                config = make(server)
                if config.sampler is not None:
                    stack.callback(config.sampler.close)
                configs.append(config)
        yield tuple(configs)
