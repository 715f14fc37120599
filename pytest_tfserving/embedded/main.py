"""``python -m pytest_tfserving.embedded``: parse flags, load models, serve gRPC + REST, stop on signals.

Readiness is announced with tensorflow_model_server's own log lines (stderr, flushed), printed only
once the port really accepts connections; launchers parse them (``process.ready_line``):

    Running gRPC ModelServer at 127.0.0.1:PORT ...      (the --bind_address; the binary says 0.0.0.0)
    Running gRPC ModelServer at UNIX socket PATH ...   (with --grpc_socket_path)
    Exporting HTTP/REST API at:localhost:PORT ...
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_tfserving.embedded.flags import FlagError, Flags, parse_flags, usage
from pytest_tfserving.embedded.settings import ServingSettings, SettingsError, load_settings
from pytest_tfserving.process.ready_line import GRPC_PREFIX, rest_line

if TYPE_CHECKING:
    from aiohttp import web

    from pytest_tfserving.embedded.core import ServingCore
    from pytest_tfserving.embedded.inference import Inference
    from pytest_tfserving.embedded.manager import Loader
    from pytest_tfserving.embedded.metrics import Metrics

log = logging.getLogger("pytest_tfserving.embedded")
FLAG_ERROR_EXIT = 255  # the real binary returns -1 from main
CONFIG_ERROR_EXIT = 255  # BuildAndStart failed: the real binary returns -1 as well


class _TfLogFormatter(logging.Formatter):
    """TensorFlow's log line layout: ``2024-01-01 12:00:00.000000: I file.py:LINE] message``."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created).strftime("%Y-%m-%d %H:%M:%S.%f")
        return f"{stamp}: {record.levelname[0]} {record.filename}:{record.lineno}] {record.getMessage()}"


def _setup_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_TfLogFormatter())
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def announce(line: str) -> None:
    """Log a readiness line and flush at once: backends wait for these."""
    log.info(line)
    for stream in (sys.stderr, sys.stdout):
        stream.flush()


def _configure_tensorflow(flags: Flags) -> None:
    """Thread pools must be set before TensorFlow runs any op."""
    import tensorflow as tf

    intra, inter = flags.threads
    if intra > 0:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
    if inter > 0:
        tf.config.threading.set_inter_op_parallelism_threads(inter)


def _make_loader(flags: Flags, settings: ServingSettings, metrics: Metrics) -> Loader:
    from pytest_tfserving.embedded.batching import Batcher
    from pytest_tfserving.embedded.manager import Loaded, ModelEntry
    from pytest_tfserving.embedded.servables import SavedModelServable, Servable
    from pytest_tfserving.embedded.tflite import TFLITE_FILE, TfliteServable
    from pytest_tfserving.embedded.warmup import warm_up

    tags = tuple(t for t in flags.saved_model_tags.split(",") if t)

    def load(entry: ModelEntry, version: int, path: Path) -> Loaded:
        servable: Servable
        if flags.prefer_tflite_model and (path / TFLITE_FILE).is_file():
            servable = TfliteServable(
                path / TFLITE_FILE, version, flags.num_tflite_pools, flags.num_tflite_interpreters_per_pool
            )
        else:
            servable = SavedModelServable(path, version, tags, settings.session_config)
        if flags.enable_model_warmup:
            replayed = warm_up(servable, path, flags.num_request_iterations_for_warmup)
            if replayed:
                log.info(
                    "Finished reading warmup data for model at %s. Number of warmup records read: %d.",
                    path,
                    replayed,
                )
        batcher = None
        if settings.batching is not None:
            threads = settings.batching.num_batch_threads or os.cpu_count() or 1
            batcher = Batcher(
                settings.batching, servable.run, metrics, settings.batch_thread_pool_name, threads
            )
        return Loaded(servable, batcher)

    return load


def _poll_every(stop: threading.Event, seconds: float, name: str, action: Callable[[], None]) -> None:
    """Run ``action`` every ``seconds`` in a daemon thread until ``stop``; errors are logged."""

    def loop() -> None:
        while not stop.wait(seconds):
            try:
                action()
            except Exception:
                log.exception("%s failed", name)

    threading.Thread(target=loop, name=name, daemon=True).start()


async def _start_rest(
    flags: Flags, settings: ServingSettings, core: ServingCore, inference: Inference
) -> web.AppRunner | None:
    """The HTTP/REST server, or None when it is off or would share the gRPC port (as upstream)."""
    if not flags.rest_enabled:
        return None
    if flags.rest_api_port != 0 and flags.rest_api_port == flags.port:
        log.error(
            "server_options.http_port cannot be same as grpc_port. Please use a different port "
            "for HTTP/REST API. Skipped exporting HTTP/REST API."
        )
        return None
    from aiohttp import web

    from pytest_tfserving.embedded.rest import build_app

    app = build_app(
        core,
        inference,
        flags.rest_api_num_threads,
        settings.prometheus_path,
        flags.rest_api_enable_cors_support,
    )
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, flags.bind_address, flags.rest_api_port, reuse_address=True)
    await site.start()
    rest_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    announce(rest_line(rest_port))
    return runner


async def _serve(flags: Flags, settings: ServingSettings) -> int:
    from pytest_tfserving.embedded.core import ServingCore
    from pytest_tfserving.embedded.inference import Inference, InferenceOptions
    from pytest_tfserving.embedded.manager import ModelManager
    from pytest_tfserving.embedded.metrics import Metrics
    from pytest_tfserving.embedded.model_config import ConfigReloader

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    metrics = Metrics()
    manager = ModelManager(settings.models, _make_loader(flags, settings, metrics))
    poll_stop = threading.Event()
    poll_every = max(1, flags.file_system_poll_wait_seconds)

    # Load in a daemon thread so a signal during a slow load still ends the process promptly.
    loaded: Future[object] = Future()

    def initial_load() -> None:
        try:
            while not poll_stop.is_set():
                manager.poll()
                if manager.all_available():
                    break
                log.error("Waiting for models %s to have a loadable version ...", manager.names)
                poll_stop.wait(poll_every)
            loaded.set_result(None)
        except BaseException as exc:
            loaded.set_exception(exc)

    threading.Thread(target=initial_load, name="initial-load", daemon=True).start()
    waiter: asyncio.Future[object] = asyncio.ensure_future(stop.wait())
    load_done: asyncio.Future[object] = asyncio.wrap_future(loaded)
    done, _ = await asyncio.wait({waiter, load_done}, return_when=asyncio.FIRST_COMPLETED)
    if waiter in done:
        poll_stop.set()
        return 0
    loaded.result()

    reloader = ConfigReloader(manager, settings.model_config, poll_stop)
    if flags.file_system_poll_wait_seconds > 0:
        _poll_every(poll_stop, flags.file_system_poll_wait_seconds, "fs-poll", manager.poll)
    if flags.model_config_file and flags.model_config_file_poll_wait_seconds > 0:
        path = flags.model_config_file
        _poll_every(
            poll_stop,
            flags.model_config_file_poll_wait_seconds,
            "config-poll",
            lambda: reloader.poll_file(path),
        )

    from pytest_tfserving.embedded.grpc_service import GrpcOptions, start_grpc

    core = ServingCore(manager, metrics, flags.enable_serialization_as_tensor_content)
    inference = Inference(manager, metrics, InferenceOptions(flags.enable_signature_method_name_check))
    grpc_server, grpc_port = start_grpc(
        core,
        inference,
        reloader,
        GrpcOptions(
            port=flags.port if flags.grpc_tcp_enabled else None,
            host=flags.bind_address,
            socket_path=flags.grpc_socket_path,
            max_threads=flags.grpc_max_threads,
            channel_arguments=flags.grpc_channel_arguments,
            enable_profiler=flags.enable_profiler,
        ),
    )
    if grpc_port is not None:
        announce(f"{GRPC_PREFIX}{flags.bind_address}:{grpc_port} ...")
    if flags.grpc_socket_path:
        announce(f"{GRPC_PREFIX}UNIX socket {flags.grpc_socket_path} ...")

    runner = await _start_rest(flags, settings, core, inference)

    await stop.wait()
    log.info("Received shutdown signal; stopping servers.")
    started = time.monotonic()
    poll_stop.set()
    if runner is not None:
        await runner.cleanup()
    await asyncio.get_running_loop().run_in_executor(None, lambda: grpc_server.stop(grace=1.0).wait())
    manager.close()
    log.info("Server stopped in %.2f s.", time.monotonic() - started)
    return 0


def _parse(args: list[str]) -> Flags | int:
    """Flags, or the exit code after printing what the binary prints for this command line."""
    try:
        flags = parse_flags(args)
    except FlagError as exc:
        if str(exc) != "--help":
            for line in str(exc).splitlines():
                log.error("%s", line)
        print(usage(), end="", flush=True)
        return FLAG_ERROR_EXIT
    return flags


def _report_ignored(flags: Flags) -> None:
    """The binary prints its first ignored argument and the usage, then starts anyway; we also say
    what each ignored argument probably meant."""
    if flags.ignored:
        print(f"unknown argument: {flags.ignored[0]}\n{usage()}", end="", flush=True)
    for warning in flags.warnings():
        log.warning("%s", warning)


def main(argv: list[str] | None = None) -> int:
    _setup_logging()
    parsed = _parse(sys.argv[1:] if argv is None else argv)
    if isinstance(parsed, int):
        return parsed
    flags = parsed
    if flags.version:  # before the ignored arguments are reported, as in main.cc
        from importlib import metadata

        print(f"TensorFlow ModelServer: pytest-tfserving-embedded-{metadata.version('pytest-tfserving')}")
        print(f"TensorFlow Library: {metadata.version('tensorflow')}")
        return 0
    _report_ignored(flags)
    try:
        settings = load_settings(flags)
    except SettingsError as exc:
        print(f"Failed to start server. Error: {exc}", flush=True)
        log.error("Failed to start server. Error: %s", exc)
        return CONFIG_ERROR_EXIT
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _configure_tensorflow(flags)
    code = asyncio.run(_serve(flags, settings))
    sys.stdout.flush()
    sys.stderr.flush()
    return code
