"""``python -m pytest_tfserving.embedded``: parse flags, load models, serve gRPC + REST, stop on signals.

Readiness is announced with tensorflow_model_server's own log lines (stderr, flushed), printed only
once the port really accepts connections; ``process.ready_line`` writes them and launchers parse them:

    Running gRPC ModelServer at 0.0.0.0:PORT ...
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
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_tfserving.embedded.flags import FlagError, Flags, parse_flags, usage
from pytest_tfserving.embedded.settings import ServingSettings, SettingsError, load_settings
from pytest_tfserving.process.ready_line import grpc_line, rest_line

if TYPE_CHECKING:
    from pytest_tfserving.embedded.manager import Loader
    from pytest_tfserving.embedded.metrics import Metrics

log = logging.getLogger("pytest_tfserving.embedded")
FLAG_ERROR_EXIT = 255  # the real binary returns -1 from main
CONFIG_ERROR_EXIT = 1


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
    use_tflite = flags.prefer_tflite_model or flags.use_tflite_model

    def load(entry: ModelEntry, version: int, path: Path) -> Loaded:
        servable: Servable
        if use_tflite and (path / TFLITE_FILE).is_file():
            servable = TfliteServable(
                path / TFLITE_FILE, version, flags.num_tflite_pools, flags.num_tflite_interpreters_per_pool
            )
        else:
            servable = SavedModelServable(path, version, tags)
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


async def _serve(flags: Flags, settings: ServingSettings) -> int:
    from pytest_tfserving.embedded.core import ServingCore
    from pytest_tfserving.embedded.manager import ModelManager
    from pytest_tfserving.embedded.metrics import Metrics

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

    def poll_forever() -> None:
        while not poll_stop.wait(flags.file_system_poll_wait_seconds):
            try:
                manager.poll()
            except Exception:
                log.exception("filesystem poll failed")

    if flags.file_system_poll_wait_seconds > 0:
        threading.Thread(target=poll_forever, name="fs-poll", daemon=True).start()

    from pytest_tfserving.embedded.grpc_service import start_grpc

    core = ServingCore(manager, metrics)
    grpc_server, grpc_port = start_grpc(core, flags.port, flags.grpc_max_threads)
    announce(grpc_line(grpc_port))

    runner = None
    if flags.rest_api_port is not None:
        if flags.rest_api_port != 0 and flags.rest_api_port == flags.port:
            log.error(
                "server_options.http_port cannot be same as grpc_port. Please use a different port "
                "for HTTP/REST API. Skipped exporting HTTP/REST API."
            )
        else:
            from aiohttp import web

            from pytest_tfserving.embedded.rest import build_app

            runner = web.AppRunner(
                build_app(core, flags.rest_api_num_threads, settings.prometheus_path),
                access_log=None,
                handle_signals=False,
            )
            await runner.setup()
            site = web.TCPSite(runner, "0.0.0.0", flags.rest_api_port, reuse_address=True)
            await site.start()
            rest_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            announce(rest_line(rest_port))

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


def main(argv: list[str] | None = None) -> int:
    _setup_logging()
    args = sys.argv[1:] if argv is None else argv
    try:
        flags = parse_flags(args)
    except FlagError as exc:
        print(f"ERROR: {exc}\n{usage()}", file=sys.stderr, flush=True)
        return FLAG_ERROR_EXIT
    if flags.version:
        from importlib import metadata

        print(f"TensorFlow ModelServer: pytest-tfserving-embedded-{metadata.version('pytest-tfserving')}")
        print(f"TensorFlow Library: {metadata.version('tensorflow')}")
        return 0
    try:
        settings = load_settings(flags)
    except SettingsError as exc:
        print(f"ERROR: {exc}", file=sys.stderr, flush=True)
        return CONFIG_ERROR_EXIT
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _configure_tensorflow(flags)
    code = asyncio.run(_serve(flags, settings))
    sys.stdout.flush()
    sys.stderr.flush()
    return code
