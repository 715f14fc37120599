"""Backend ``docker``: the official ``tensorflow/serving`` image through testcontainers.

Two layers: ``container_definition`` is a pure function (spec -> image, command, read-only mounts,
loopback-only ports, GPU requests, environment, config files) that unit tests check without an engine;
``DockerBackend.start`` applies it to a testcontainers ``DockerContainer``, waits until every model is
AVAILABLE over REST, and removes the container on ``stop``.

The flags go after the image's entrypoint (``docker run tensorflow/serving --port=8500 ...``); the
entrypoint's own ``--model_name/--model_base_path`` are ignored by TF Serving when
``--model_config_file`` is given. Ports are published on 127.0.0.1 only, so the engine must run on this
machine (a remote ``DOCKER_HOST`` would publish on its own loopback).
If this process is SIGKILLed, testcontainers' Ryuk sidecar removes the container (unless disabled with
TESTCONTAINERS_RYUK_DISABLED=true, e.g. on engines that cannot run it).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_tfserving.backends.base import BackendError, Endpoints, ServerCrashed
from pytest_tfserving.backends.container_wait import (
    container_logs,
    loopback_url,
    polling_wait,
    published_port,
)
from pytest_tfserving.backends.engine import engine_status, no_engine_error, start_hint
from pytest_tfserving.backends.local import endpoints_for
from pytest_tfserving.metrics.resources import ResourceSampler
from pytest_tfserving.process import cleanup
from pytest_tfserving.process.errors import tail
from pytest_tfserving.process.launcher import STARTUP_HINT
from pytest_tfserving.process.wait import ModelsAvailableWait
from pytest_tfserving.serving.spec import ModelSpec, ServerSpec

DEFAULT_IMAGE_REPO = "tensorflow/serving"
DEFAULT_TAG = "2.19.1"  # pinned: a moving tag would change the baseline's server under our feet
DEFAULT_IMAGE = f"{DEFAULT_IMAGE_REPO}:{DEFAULT_TAG}"
GRPC_PORT = 8500
REST_PORT = 8501
CONFIG_MOUNT = "/config"
MODELS_MOUNT = "/models"

_DEVICE_IDS = re.compile(r"^(?:device=)?(\d+(?:,\d+)*)$")


@dataclass(frozen=True)
class GpuRequest:
    """A docker ``DeviceRequest``: ``count=-1`` is all GPUs; or explicit ``device_ids``."""

    count: int | None = None
    device_ids: tuple[str, ...] = ()
    capabilities: tuple[tuple[str, ...], ...] = (("gpu",),)

    def to_docker(self) -> Any:
        from docker.types import DeviceRequest

        return DeviceRequest(
            count=self.count,
            device_ids=list(self.device_ids) or None,
            capabilities=[list(c) for c in self.capabilities],
        )


def parse_gpus(gpus: str | None) -> GpuRequest | None:
    """``docker run --gpus`` syntax: "all", a count ("2"), ids ("0,1", "device=0,1"); None/"none": no GPU."""
    if gpus is None:
        return None
    value = gpus.strip().strip('"').strip("'")
    if value in ("", "none"):
        return None
    if value == "all":
        return GpuRequest(count=-1)
    if value.isdigit() and not value.startswith("device="):
        count = int(value)
        if count < 1:
            raise ValueError(
                f"gpus={gpus!r}: a GPU count must be at least 1; use 'all', a count like '2', "
                "'device=0' for GPU 0, or 'none'"
            )
        return GpuRequest(count=count)
    match = _DEVICE_IDS.match(value)
    if match:
        return GpuRequest(device_ids=tuple(match.group(1).split(",")))
    raise ValueError(
        f"gpus={gpus!r} is not understood; use 'all', a count like '2', device ids like '0,1' "
        "or 'device=0,1', or 'none'"
    )


def resolve_image(image: str | None, gpu: bool) -> str:
    """``tensorflow/serving:<pinned tag>[-gpu]`` by default; a repository without a tag gets the pinned tag.

    With GPUs requested, "-gpu" is appended to a tag that lacks it (TF Serving's naming: ``2.19.1`` ->
    ``2.19.1-gpu``); a digest is used as given. ``latest`` is refused: baselines need to know which
    server produced them.
    """
    suffix = "-gpu" if gpu else ""
    if not image:
        return f"{DEFAULT_IMAGE}{suffix}"
    name, tag = _split_tag(image)
    if tag is None:
        return f"{name}:{DEFAULT_TAG}{suffix}"
    if tag == "latest" or tag == "latest-gpu":
        raise ValueError(
            f"image {image!r} uses a moving tag; pin a version, e.g. {DEFAULT_IMAGE}{suffix}, so that "
            "baselines stay comparable"
        )
    if gpu and tag != "digest" and not tag.endswith("-gpu"):
        return f"{image}-gpu"
    return image


def _split_tag(image: str) -> tuple[str, str | None]:
    if "@" in image:  # digest pins the image exactly
        return image, "digest"
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = image.rsplit(":", 1)
        return name, tag
    return image, None


@dataclass(frozen=True)
class Volume:
    host: str
    container: str
    mode: str = "ro"


@dataclass(frozen=True)
class ContainerDefinition:
    """Everything the container needs, decided without talking to an engine."""

    image: str
    command: tuple[str, ...]
    volumes: tuple[Volume, ...]
    ports: Mapping[str, tuple[str, int | None]]
    device_requests: tuple[GpuRequest, ...]
    environment: Mapping[str, str]
    host_config_dir: str
    files: Mapping[str, str] = field(default_factory=dict)  # config file name -> text (host_config_dir)


def model_mounts(models: tuple[ModelSpec, ...]) -> dict[str, str]:
    """Host base path -> container path, one mount per distinct host directory."""
    mounts: dict[str, str] = {}
    for model in models:
        host = str(Path(model.base_path).resolve())
        mounts.setdefault(host, f"{MODELS_MOUNT}/{model.name}")
    return mounts


def container_definition(
    spec: ServerSpec,
    image: str | None = None,
    gpus: str | None = None,
    *,
    host_config_dir: Path,
    environment: Mapping[str, str] | None = None,
) -> ContainerDefinition:
    """The container for ``spec``: pure (renders flags and files but writes nothing)."""
    from pytest_tfserving.serving.render import ServerLayout, render_server

    gpu = parse_gpus(gpus)
    mounts = model_mounts(spec.models)

    def model_path(model: ModelSpec) -> str:
        return mounts[str(Path(model.base_path).resolve())]

    layout = ServerLayout(
        grpc_port=GRPC_PORT, rest_port=REST_PORT, config_dir=CONFIG_MOUNT, model_path=model_path
    )
    rendered = render_server(spec, layout)
    prefix = CONFIG_MOUNT + "/"
    files = {(k[len(prefix) :] if k.startswith(prefix) else k): v for k, v in rendered.files.items()}
    host_dir = str(Path(host_config_dir).resolve())
    volumes = (
        Volume(host_dir, CONFIG_MOUNT, "ro"),
        *(Volume(host, container, "ro") for host, container in mounts.items()),
    )
    return ContainerDefinition(
        image=resolve_image(image, gpu is not None),
        command=tuple(rendered.flags),
        volumes=volumes,
        ports={f"{GRPC_PORT}/tcp": ("127.0.0.1", None), f"{REST_PORT}/tcp": ("127.0.0.1", None)},
        device_requests=(gpu,) if gpu is not None else (),
        environment=dict(environment or {}),
        host_config_dir=host_dir,
        files=files,
    )


class DockerServer:
    """A running tensorflow/serving container; ``stop`` removes it."""

    def __init__(self, spec: ServerSpec, endpoints: Endpoints, description: str, container: Any) -> None:
        self.spec = spec
        self.endpoints = endpoints
        self.description = description
        self.container = container
        self._stopped = False

    def logs(self) -> str:
        return container_logs(self.container)

    def resource_sampler(self) -> ResourceSampler:
        from pytest_tfserving.metrics.docker_stats import DockerStatsSampler

        return DockerStatsSampler(self.container.get_wrapped_container())

    def check_alive(self) -> None:
        try:
            self.container.reload()
            status = self.container.status
        except Exception as exc:
            raise ServerCrashed(f"container {self.description} is gone ({exc})") from exc
        if status != "running":
            raise ServerCrashed(
                f"container {self.description} is {status}; last log lines:\n{tail(self.logs())}"
            )

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        cleanup.unregister(self)
        try:
            self.container.stop()  # force-removes the container
        except Exception as exc:
            if "No such container" not in str(exc) and "404" not in str(exc):
                raise


class DockerBackend:
    """Runs ``tensorflow/serving:<tag>[-gpu]`` (or ``image``) with the spec's flags."""

    name = "docker"

    def __init__(
        self,
        image: str | None = None,
        gpus: str | None = None,
        environment: Mapping[str, str] | None = None,
        docker_client_kw: Mapping[str, Any] | None = None,
    ) -> None:
        self.gpus = gpus
        self.image = resolve_image(image, parse_gpus(gpus) is not None)
        self.environment = dict(environment or {})
        self.docker_client_kw = dict(docker_client_kw or {})

    def start(self, spec: ServerSpec, workdir: Path, startup_timeout_s: float) -> DockerServer:
        rundir = Path(tempfile.mkdtemp(prefix="docker-", dir=workdir))
        definition = container_definition(
            spec, self.image, self.gpus, host_config_dir=rundir / "config", environment=self.environment
        )
        config_dir = Path(definition.host_config_dir)
        config_dir.mkdir(parents=True, exist_ok=True)
        for name, text in definition.files.items():
            (config_dir / name).write_text(text)
        config_dir.chmod(0o755)  # readable by the container's user, also under rootless engines

        answered, detail = engine_status()
        if not answered:
            raise no_engine_error(detail)
        container = apply_definition(definition, self.docker_client_kw)
        names = [m.name for m in spec.models]

        def models_available(started: Any) -> ModelsAvailableWait:  # the port is published once started
            return ModelsAvailableWait(lambda: loopback_url(started, REST_PORT), names)

        container.waiting_for(
            polling_wait(models_available, startup_timeout_s, 0.25, subject="container", hint=STARTUP_HINT)
        )
        server = DockerServer(spec, endpoints_for(spec, 0, 0), definition.image, container)
        cleanup.register(server)
        try:
            container.start()
            rest_port = published_port(container, REST_PORT)
            grpc_port = published_port(container, GRPC_PORT)
        except BaseException as exc:
            log = container_logs(container)
            server.stop()
            if isinstance(exc, Exception):
                error = ServerCrashed if isinstance(exc, ServerCrashed) else BackendError
                raise error(
                    f"{definition.image} did not start: {exc}{start_hint(exc)}\n"
                    f"container log, last lines:\n{tail(log)}"
                ) from exc
            raise
        server.endpoints = endpoints_for(spec, grpc_port, rest_port)
        return server


# Every container we start carries this label: `docker ps -a --filter label=pytest-tfserving=1`
# finds leftovers even where testcontainers' reaper (Ryuk) is disabled.
CONTAINER_LABELS: Mapping[str, str] = {"pytest-tfserving": "1"}


def apply_definition(
    definition: ContainerDefinition, docker_client_kw: Mapping[str, Any] | None = None
) -> Any:
    """The thin layer: a testcontainers ``DockerContainer`` configured from ``definition`` (not started)."""
    from testcontainers.core.container import DockerContainer

    container = DockerContainer(
        definition.image,
        docker_client_kw=dict(docker_client_kw or {}),
        command=list(definition.command),  # type: ignore[arg-type]  # docker-py takes a list too
        env=dict(definition.environment),
    )
    for volume in definition.volumes:
        container.with_volume_mapping(volume.host, volume.container, volume.mode)
    for port, binding in definition.ports.items():
        container.ports[port] = binding  # type: ignore[assignment]  # docker-py (host_ip, host_port)
    kwargs: dict[str, Any] = {"labels": dict(CONTAINER_LABELS)}
    if definition.device_requests:
        kwargs["device_requests"] = [r.to_docker() for r in definition.device_requests]
    container.with_kwargs(**kwargs)  # replaces earlier kwargs: set everything in one call
    return container
