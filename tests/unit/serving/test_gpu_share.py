"""GPU servers running at once get --per_process_gpu_memory_fraction sized by their count: the pool
launches them with it (the docker command carries it), a user's own fraction wins, and one server alone
gets none."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pytest_tfserving.backends.base import Endpoints
from pytest_tfserving.backends.docker import DockerBackend, container_definition
from pytest_tfserving.backends.embedded import EmbeddedBackend
from pytest_tfserving.backends.external import ExternalBackend
from pytest_tfserving.backends.selection import serves_on_gpu
from pytest_tfserving.services.server_pool import ServerPool
from pytest_tfserving.serving.gpu_share import (
    gpu_memory_fraction_for,
    local_gpu_visible,
    session_gpu_servers,
    with_gpu_share,
)
from pytest_tfserving.serving.spec import ServerSpec

FLAG = "--per_process_gpu_memory_fraction"


@pytest.mark.parametrize(("servers", "share"), [(1, None), (2, 0.45), (3, 0.3), (4, 0.22), (6, 0.15)])
def test_each_server_gets_an_equal_part_of_the_gpu_less_headroom(servers: int, share: float | None) -> None:
    assert gpu_memory_fraction_for(servers) == share


def test_the_shares_of_servers_at_once_leave_room_for_their_cuda_contexts() -> None:
    for servers in range(2, 40):
        share = gpu_memory_fraction_for(servers)
        assert share is not None and share > 0 and servers * share <= 0.9 + 1e-9


@pytest.mark.parametrize("servers", [0, -1, True, 2.0])
def test_a_count_that_is_not_a_positive_int_is_refused(servers: object) -> None:
    with pytest.raises((ValueError, TypeError), match="concurrent_gpu_servers"):
        gpu_memory_fraction_for(servers)  # type: ignore[arg-type]


def test_too_many_servers_for_one_percent_each_is_refused() -> None:
    with pytest.raises(ValueError, match=r"set ServerSpec\.gpu_memory_fraction yourself"):
        gpu_memory_fraction_for(91)


def test_a_users_fraction_wins_and_one_server_is_left_alone(tmp_path: Path) -> None:
    own = ServerSpec.single("tiny", tmp_path, gpu_memory_fraction=0.7)
    assert with_gpu_share(own, 2) is own
    plain = ServerSpec.single("tiny", tmp_path)
    assert with_gpu_share(plain, 1) is plain
    assert with_gpu_share(plain, 2).gpu_memory_fraction == 0.45


def test_ab_baseline_runs_two_gpu_servers_at_once_except_while_recording() -> None:
    assert session_gpu_servers(on_gpu=True, ab_baseline=True, update_baselines=False) == 2
    assert session_gpu_servers(on_gpu=True, ab_baseline=True, update_baselines=True) == 1
    assert session_gpu_servers(on_gpu=True, ab_baseline=False, update_baselines=False) == 1
    assert session_gpu_servers(on_gpu=False, ab_baseline=True, update_baselines=False) == 1


def test_ab_replicas_multiply_the_gpu_servers_of_both_sides() -> None:
    assert session_gpu_servers(on_gpu=True, ab_baseline=True, update_baselines=False, replicas=3) == 6
    assert session_gpu_servers(on_gpu=True, ab_baseline=False, update_baselines=False, replicas=3) == 1
    assert gpu_memory_fraction_for(6) == 0.15  # three processes of A and three of B on one GPU
    with pytest.raises(ValueError, match="replicas"):
        session_gpu_servers(on_gpu=True, ab_baseline=True, update_baselines=False, replicas=0)


@dataclass
class _RenderedServer:
    spec: ServerSpec
    command: tuple[str, ...]
    endpoints: Endpoints = field(default_factory=lambda: Endpoints("127.0.0.1:1", "http://127.0.0.1:2", None))
    description: str = "rendered docker command, not started"
    stopped: bool = False

    def check_alive(self) -> None:
        pass

    def stop(self) -> None:
        self.stopped = True


@dataclass
class _DockerCommandBackend:
    """Renders the docker backend's real container definition for a GPU and starts nothing (no engine
    here); the pool under test decides which spec it is given."""

    name: str = "docker"
    launched: list[ServerSpec] = field(default_factory=list)

    def start(self, spec: ServerSpec, workdir: Path, startup_timeout_s: float) -> _RenderedServer:
        self.launched.append(spec)
        definition = container_definition(spec, gpus="all", host_config_dir=workdir / "config")
        return _RenderedServer(spec, definition.command)


def _flag_values(command: tuple[str, ...]) -> list[str]:
    return [flag.split("=", 1)[1] for flag in command if flag.startswith(FLAG + "=")]


def test_the_pool_launches_two_gpu_servers_with_045_each(tmp_path: Path) -> None:
    backend = _DockerCommandBackend()
    pool = ServerPool(backend, tmp_path, 10.0, concurrent_gpu_servers=2)  # type: ignore[arg-type]
    current = ServerSpec.single("tiny", tmp_path / "a")
    reference = ServerSpec.single("tiny", tmp_path / "b", intra_op=2)
    servers = [pool.get(current), pool.get(reference)]
    assert [_flag_values(s.command) for s in servers] == [["0.45"], ["0.45"]]  # type: ignore[attr-defined]
    # The share belongs to this session, not to the deployment: fingerprints read the spec asked for.
    assert [s.spec for s in servers] == [current, reference]
    assert pool.get(current) is servers[0]
    assert pool.stop_all() == []


def test_the_pool_keeps_a_users_fraction_and_leaves_a_lone_server_at_tensorflows_default(
    tmp_path: Path,
) -> None:
    shared = ServerPool(_DockerCommandBackend(), tmp_path, 10.0, concurrent_gpu_servers=2)  # type: ignore[arg-type]
    own = shared.get(ServerSpec.single("tiny", tmp_path / "a", gpu_memory_fraction=0.3))
    assert _flag_values(own.command) == ["0.3"]  # type: ignore[attr-defined]
    alone = ServerPool(_DockerCommandBackend(), tmp_path, 10.0)  # type: ignore[arg-type]
    assert _flag_values(alone.get(ServerSpec.single("tiny", tmp_path / "a")).command) == []  # type: ignore[attr-defined]


def test_a_bad_count_fails_when_the_pool_is_made(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="concurrent_gpu_servers=0"):
        ServerPool(_DockerCommandBackend(), tmp_path, 10.0, concurrent_gpu_servers=0)  # type: ignore[arg-type]


def test_which_backends_serve_on_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    assert serves_on_gpu(DockerBackend(image="tensorflow/serving:2.19.1-gpu", gpus="all"))
    assert not serves_on_gpu(DockerBackend(image="tensorflow/serving:2.19.1"))
    assert not serves_on_gpu(ExternalBackend("127.0.0.1:8500", "http://127.0.0.1:8501"))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert not serves_on_gpu(EmbeddedBackend())


def test_a_local_gpu_is_seen_through_the_driver_device_unless_cuda_hides_it(tmp_path: Path) -> None:
    device = tmp_path / "nvidiactl"
    assert not local_gpu_visible({}, device)
    device.touch()
    assert local_gpu_visible({}, device)
    assert local_gpu_visible({"CUDA_VISIBLE_DEVICES": "0"}, device)
    assert not local_gpu_visible({"CUDA_VISIBLE_DEVICES": ""}, device)
    assert not local_gpu_visible({"CUDA_VISIBLE_DEVICES": "-1"}, device)
