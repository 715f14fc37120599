"""docker stats arithmetic on stats bodies shaped like Docker (cgroup v1, v2) and Podman return them."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pytest_tfserving.metrics.docker_stats import (
    MIB,
    DockerStatsSampler,
    cpu_percent_from_stats,
    memory_bytes_from_stats,
    memory_mb_from_stats,
)
from pytest_tfserving.metrics.errors import SamplingError

# Docker on a cgroup v2 host (fields as the daemon sends them; percpu_usage absent on v2).
CGROUP_V2: dict[str, Any] = {
    "read": "2024-08-31T22:02:27.639190522Z",
    "preread": "2024-08-31T22:02:26.636510793Z",
    "pids_stats": {"current": 44, "limit": 18939},
    "num_procs": 0,
    "cpu_stats": {
        "cpu_usage": {"total_usage": 63085778000, "usage_in_kernelmode": 3417971000,
                      "usage_in_usermode": 59667807000},
        "system_cpu_usage": 107906510000000,
        "online_cpus": 12,
        "throttling_data": {"periods": 402, "throttled_periods": 0, "throttled_time": 0},
    },
    "precpu_stats": {
        "cpu_usage": {"total_usage": 61876816000, "usage_in_kernelmode": 3339099000,
                      "usage_in_usermode": 58537716000},
        "system_cpu_usage": 107894830000000,
        "online_cpus": 12,
        "throttling_data": {"periods": 392, "throttled_periods": 0, "throttled_time": 0},
    },
    "memory_stats": {
        "usage": 1563537408,
        "stats": {"active_anon": 1437609984, "active_file": 806912, "anon": 1437630464, "file": 116547584,
                  "inactive_anon": 0, "inactive_file": 115740672, "kernel_stack": 720896, "slab": 4972568},
        "limit": 2122317824,
    },
    "name": "/tfserving",
    "id": "091c9a0c0d2e",
}

# Docker on a cgroup v1 host: percpu_usage present, online_cpus absent (older daemons), total_* keys.
CGROUP_V1: dict[str, Any] = {
    "read": "2019-03-01T10:00:02.000000000Z",
    "preread": "2019-03-01T10:00:01.000000000Z",
    "cpu_stats": {
        "cpu_usage": {"total_usage": 4_000_000_000, "percpu_usage": [2_500_000_000, 1_500_000_000, 0, 0],
                      "usage_in_kernelmode": 500_000_000, "usage_in_usermode": 3_400_000_000},
        "system_cpu_usage": 900_000_000_000,
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    },
    "precpu_stats": {
        "cpu_usage": {"total_usage": 3_000_000_000, "percpu_usage": [2_000_000_000, 1_000_000_000, 0, 0],
                      "usage_in_kernelmode": 400_000_000, "usage_in_usermode": 2_500_000_000},
        "system_cpu_usage": 896_000_000_000,
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    },
    "memory_stats": {
        "usage": 524_288_000,
        "max_usage": 600_000_000,
        "stats": {"cache": 104_857_600, "inactive_file": 1, "total_inactive_file": 52_428_800,
                  "rss": 400_000_000, "total_rss": 400_000_000},
        "limit": 8_000_000_000,
    },
}

# Podman's compat endpoint with stream=false: stats null, precpu all zero, online_cpus only in cpu_stats.
PODMAN: dict[str, Any] = {
    "read": "2023-05-10T12:00:00.5Z",
    "preread": "0001-01-01T00:00:00Z",
    "cpu_stats": {"cpu_usage": {"total_usage": 7_000_000_000, "usage_in_kernelmode": 1_000_000_000,
                                "usage_in_usermode": 6_000_000_000},
                  "system_cpu_usage": 5_000_000_000_000, "online_cpus": 4,
                  "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}},
    "precpu_stats": {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                     "system_cpu_usage": 0, "online_cpus": 0,
                     "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}},
    "memory_stats": {"usage": 209_715_200, "max_usage": 0, "stats": None, "limit": 4_000_000_000},
}


def test_cgroup_v2_cpu_uses_precpu_and_online_cpus() -> None:
    # (63085778000 - 61876816000) / (107906510000000 - 107894830000000) * 12 * 100
    assert cpu_percent_from_stats(CGROUP_V2, None) == pytest.approx(1208962000 / 11680000000 * 1200)
    assert cpu_percent_from_stats(CGROUP_V2, None) == pytest.approx(124.2083, abs=1e-3)


def test_cgroup_v2_memory_subtracts_inactive_file() -> None:
    assert memory_bytes_from_stats(CGROUP_V2) == 1563537408 - 115740672
    assert memory_mb_from_stats(CGROUP_V2) == pytest.approx((1563537408 - 115740672) / MIB)


def test_cgroup_v1_cpu_counts_percpu_entries_when_online_cpus_missing() -> None:
    # 1e9 / 4e9 * 4 CPUs (length of percpu_usage) * 100
    assert cpu_percent_from_stats(CGROUP_V1, None) == pytest.approx(100.0)


def test_cgroup_v1_memory_subtracts_total_inactive_file_not_inactive_file() -> None:
    assert memory_bytes_from_stats(CGROUP_V1) == 524_288_000 - 52_428_800


def test_cgroup_v1_inactive_larger_than_usage_falls_back_like_the_cli() -> None:
    stats = copy.deepcopy(CGROUP_V1)
    stats["memory_stats"]["stats"]["total_inactive_file"] = 600_000_000  # > usage: v1 rule skipped
    assert memory_bytes_from_stats(stats) == 524_288_000 - 1  # then the v2 key is tried, as the CLI does


def test_previous_sample_replaces_precpu() -> None:
    later = copy.deepcopy(CGROUP_V2)
    later["cpu_stats"]["cpu_usage"]["total_usage"] += 6_000_000_000  # 6 s of CPU
    later["cpu_stats"]["system_cpu_usage"] += 24_000_000_000  # 2 s wall on 12 CPUs
    assert cpu_percent_from_stats(later, CGROUP_V2) == pytest.approx(300.0)


def test_no_progress_is_zero_not_negative() -> None:
    assert cpu_percent_from_stats(CGROUP_V2, CGROUP_V2) == 0.0
    restarted = copy.deepcopy(CGROUP_V2)
    restarted["cpu_stats"]["cpu_usage"]["total_usage"] = 10  # container restarted: usage went down
    assert cpu_percent_from_stats(restarted, CGROUP_V2) == 0.0


def test_podman_first_sample_primes_and_memory_is_usage() -> None:
    assert cpu_percent_from_stats(PODMAN, None) == 0.0
    assert memory_bytes_from_stats(PODMAN) == 209_715_200


def test_podman_second_sample_against_first() -> None:
    later = copy.deepcopy(PODMAN)
    later["cpu_stats"]["cpu_usage"]["total_usage"] += 2_000_000_000
    later["cpu_stats"]["system_cpu_usage"] += 8_000_000_000
    assert cpu_percent_from_stats(later, PODMAN) == pytest.approx(100.0)


def test_stopped_container_shape_gives_zeros() -> None:
    stopped = {"read": "0001-01-01T00:00:00Z", "cpu_stats": {"cpu_usage": {"total_usage": 0},
               "throttling_data": {}}, "precpu_stats": {"cpu_usage": {"total_usage": 0}}, "memory_stats": {}}
    assert cpu_percent_from_stats(stopped, None) == 0.0
    assert memory_bytes_from_stats(stopped) == 0.0


class _RecordedContainer:
    """Replays stats bodies recorded from a daemon (no Docker daemon on this machine)."""

    def __init__(self, name: str, frames: list[dict[str, Any]]) -> None:
        self.name = name
        self.frames = frames
        self.calls: list[dict[str, Any]] = []

    def stats(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return self.frames.pop(0)


def test_sampler_measures_between_its_own_one_shot_samples() -> None:
    first = copy.deepcopy(CGROUP_V2)
    first["precpu_stats"] = {"cpu_usage": {"total_usage": 0}, "throttling_data": {}}  # one-shot shape
    second = copy.deepcopy(first)
    second["cpu_stats"]["cpu_usage"]["total_usage"] += 3_000_000_000
    second["cpu_stats"]["system_cpu_usage"] += 24_000_000_000
    container = _RecordedContainer("tfs", [first, second])
    sampler = DockerStatsSampler(container)
    assert sampler.sample().cpu_percent == 0.0
    window = sampler.sample()
    assert window.cpu_percent == pytest.approx(150.0)
    assert window.rss_mb == pytest.approx((1563537408 - 115740672) / MIB)
    assert container.calls == [{"stream": False, "one_shot": True}] * 2


def test_sampler_reports_a_stopped_container_by_name() -> None:
    container = _RecordedContainer("tfs", [{"memory_stats": {}, "cpu_stats": {}}])
    with pytest.raises(SamplingError, match=r"'tfs'.*not running.*docker logs tfs"):
        DockerStatsSampler(container).sample()


class _OldEngineContainer(_RecordedContainer):
    def stats(self, **kwargs: Any) -> dict[str, Any]:
        if kwargs.get("one_shot"):
            self.calls.append(kwargs)
            raise RuntimeError("one_shot is not supported for API version < 1.41")  # docker-py's message
        return super().stats(**kwargs)


def test_sampler_falls_back_when_the_engine_predates_one_shot() -> None:
    container = _OldEngineContainer("tfs", [copy.deepcopy(CGROUP_V2)])
    sampler = DockerStatsSampler(container)
    sample = sampler.sample()
    assert sample.cpu_percent == pytest.approx(124.2083, abs=1e-3)  # precpu filled by the daemon
    assert container.calls == [{"stream": False, "one_shot": True}, {"stream": False}]
    assert sampler.one_shot is False
