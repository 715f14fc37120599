"""Is a Docker-compatible engine here, and the image? Asked by ``auto`` selection, the docker backend
and the Redis container, without starting anything; and advice for start failures."""

from __future__ import annotations

import os

from pytest_tfserving.backends.base import BackendError

PING_API_VERSION = "1.41"  # understood by Docker >= 20.10 and Podman >= 3
ALTERNATIVES = "--tfserving-backend=embedded|binary|external"


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


def no_engine_error(detail: str) -> BackendError:
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
