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

import os
import re
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_tfserving.backends.base import BackendError, Endpoints, ServerCrashed
from pytest_tfserving.backends.local import endpoints_for
from pytest_tfserving.backends.process import tail
from pytest_tfserving.metrics.resources import ResourceSampler
from pytest_tfserving.process import cleanup
from pytest_tfserving.process.readiness import models_available
from pytest_tfserving.serving.spec import ModelSpec, ServerSpec

DEFAULT_IMAGE_REPO = "tensorflow/serving"
DEFAULT_TAG = "2.19.1"  # pinned: a moving tag would change the baseline's server under our feet
DEFAULT_IMAGE = f"{DEFAULT_IMAGE_REPO}:{DEFAULT_TAG}"
GRPC_PORT = 8500
REST_PORT = 8501
CONFIG_MOUNT = "/config"
MODELS_MOUNT = "/models"
PING_API_VERSION = "1.41"  # understood by Docker >= 20.10 and Podman >= 3
ALTERNATIVES = "--tfserving-backend=embedded|binary|external"

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


# --- engine access ------------------------------------------------------------------------------


def engine_status(timeout_s: float = 3.0) -> tuple[bool, str]:
    """(answered, detail): ping the engine that DOCKER_HOST / the default socket points at."""
    try:
        import docker
    except ImportError as exc:  # a dependency, but say so clearly if it is missing
        return False, f"docker-py not installed ({exc}); pip install docker"
    client = None
    where = os.environ.get("DOCKER_HOST") or "the default socket unix:///var/run/docker.sock"
    try:
        # A fixed API version skips docker-py's GET /version round trip: only /_ping is asked.
        client = docker.from_env(version=PING_API_VERSION, timeout=max(1, int(timeout_s)))
        client.ping()
        return True, f"engine at {where} answered"
    except Exception as exc:  # DockerException, requests' ConnectionError, socket errors...
        return False, f"no docker engine at {where} ({_root_cause(exc)})"
    finally:
        if client is not None:
            client.close()


def _root_cause(exc: BaseException) -> str:
    """The innermost error in a docker-py/requests chain, e.g. "FileNotFoundError: No such file"."""
    seen = exc
    while seen.__cause__ is not None or seen.__context__ is not None:
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
    for arg in getattr(seen, "args", ()):  # urllib3 wraps the OSError in its args
        if isinstance(arg, BaseException):
            seen = arg
        elif isinstance(arg, tuple):
            seen = next((a for a in arg if isinstance(a, BaseException)), seen)
    text = getattr(seen, "strerror", None) or str(seen) or type(seen).__name__
    return f"{type(seen).__name__}: {str(text).splitlines()[0][:160]}"


def image_status(image: str, timeout_s: float = 10.0) -> tuple[bool, str]:
    """(usable, detail): present locally, or its registry answers for it (pullable) without pulling."""
    import docker

    client = docker.from_env(version=PING_API_VERSION, timeout=max(1, int(timeout_s)))
    try:
        try:
            client.images.get(image)
            return True, f"image {image} present"
        except docker.errors.ImageNotFound:
            pass
        try:
            client.images.get_registry_data(image)
            return True, f"image {image} pullable"
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return False, f"image {image} neither present nor pullable ({first[:160]})"
    except Exception as exc:
        return False, f"cannot query image {image} ({exc})"
    finally:
        client.close()


def _no_engine_error(detail: str) -> BackendError:
    return BackendError(
        f"--tfserving-backend=docker needs a running Docker-compatible engine, but {detail}. Start Docker "
        f"(or Podman's socket and set DOCKER_HOST), or choose another backend: {ALTERNATIVES}"
    )


def start_hint(exc: BaseException) -> str:
    """Advice for start failures whose fix is not obvious from docker-py's message."""
    text = str(exc)
    if "ryuk" in text.lower():
        return (
            "\nhint: testcontainers' Ryuk reaper (which removes containers if pytest is SIGKILLed) could not "
            "start; pull its image (testcontainers/ryuk) or set TESTCONTAINERS_RYUK_DISABLED=true (our "
            "teardown, atexit and SIGTERM handlers still remove the containers)"
        )
    if "No such image" in text or "pull access denied" in text or "manifest unknown" in text:
        return "\nhint: the image is neither present nor pullable here; docker pull it or pass another image"
    return ""


def published_port(container: Any, port: int) -> int:
    """The 127.0.0.1 port the engine published for ``port``.

    Not testcontainers' ``get_exposed_port``: when it believes it runs inside a container it returns
    the container port and a gateway IP, but we publish on this machine's loopback and connect there.
    """
    return int(container.get_docker_client().port(container.get_container_id(), port))


def _ready_strategy(names: list[str], timeout_s: float) -> Any:
    """A testcontainers wait strategy: every model AVAILABLE over REST; fails fast if the container exits."""
    from testcontainers.core.waiting_utils import WaitStrategy

    class ModelsAvailable(WaitStrategy):
        def wait_until_ready(self, container: Any) -> None:
            deadline = time.monotonic() + self._startup_timeout
            url = ""
            while True:
                container.reload()
                if container.status in ("exited", "dead"):
                    raise ServerCrashed(f"container exited during startup (status {container.status})")
                if not url:
                    try:
                        url = f"http://127.0.0.1:{published_port(container, REST_PORT)}"
                    except Exception:
                        url = ""
                if url and models_available(url, names):
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"models {names} not AVAILABLE at {url or 'the REST port'} after "
                        f"{self._startup_timeout:.0f}s; raise the startup timeout if the models are large"
                    )
                time.sleep(self._poll_interval)

    return ModelsAvailable().with_startup_timeout(int(max(1, timeout_s))).with_poll_interval(0.25)


def _container_logs(container: Any) -> str:
    try:
        out, err = container.get_logs()
        return (out or b"").decode(errors="replace") + (err or b"").decode(errors="replace")
    except Exception as exc:
        return f"(container log unavailable: {exc})"


class DockerServer:
    """A running tensorflow/serving container; ``stop`` removes it."""

    def __init__(self, spec: ServerSpec, endpoints: Endpoints, description: str, container: Any) -> None:
        self.spec = spec
        self.endpoints = endpoints
        self.description = description
        self.container = container
        self._stopped = False

    def logs(self) -> str:
        return _container_logs(self.container)

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
            raise _no_engine_error(detail)
        container = apply_definition(definition, self.docker_client_kw)
        names = [m.name for m in spec.models]
        container.waiting_for(_ready_strategy(names, startup_timeout_s))
        server = DockerServer(spec, endpoints_for(spec, 0, 0), definition.image, container)
        cleanup.register(server)
        try:
            container.start()
            rest_port = published_port(container, REST_PORT)
            grpc_port = published_port(container, GRPC_PORT)
        except BaseException as exc:
            log = _container_logs(container)
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
