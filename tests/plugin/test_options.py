"""The plugin's settings as users meet them: --help, --markers, ini keys, CLI over ini, bad values, header.

None of these runs starts a server: they stop at configuration, or run a test that only reads
``tfserving_settings``, so each is an inline pytester run of well under a second.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pytest_tfserving.options import OPTIONS

DUMP_SETTINGS = """
import json
from pathlib import Path

def test_dump(tfserving_settings, request):
    data = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(tfserving_settings).items()}
    (Path(str(request.config.rootpath)) / "settings.json").write_text(json.dumps(data))
"""

NO_ENGINE = "unix:///nonexistent/pytest-tfserving-test/docker.sock"


def flat(text: str) -> str:
    """Help output wraps lines at the terminal width; compare with whitespace collapsed."""
    return " ".join(text.split())


def settings_of(pytester: pytest.Pytester, *args: str) -> dict[str, object]:
    pytester.makepyfile(test_dump=DUMP_SETTINGS)
    result = pytester.runpytest("-p", "no:cacheprovider", *args)
    result.assert_outcomes(passed=1)
    data: dict[str, object] = json.loads((pytester.path / "settings.json").read_text())
    return data


def test_help_lists_every_option_and_ini_key_with_true_defaults(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    assert result.ret == 0
    text = flat(result.stdout.str())
    assert "TensorFlow Serving performance gate (pytest-tfserving):" in text
    group = text.split("TensorFlow Serving performance gate (pytest-tfserving):", 1)[1]
    for option in OPTIONS:
        assert f"{option.cli}" in group, f"{option.cli} missing from --help"
        assert flat(option.help) in text, f"help of {option.cli} not rendered"
        assert re.search(rf"\b{option.ini} \((string|args|linelist|bool)\):", text), (
            f"ini key {option.ini} missing from --help"
        )
        shown = re.search(r"\(default: ([^)]*)\)", option.help)
        if option.default is not None and not option.flag:
            # The default printed in --help is the default the plugin really uses.
            assert shown, f"{option.cli} has default {option.default!r} but --help does not say so"
            assert option.parse(shown.group(1)) == option.parse(str(option.default)), option.cli


def test_markers_lists_perf(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        ["@pytest.mark.perf(**ceilings): a performance test, selected with `pytest -m perf`*"]
    )


def test_defaults_without_ini_or_cli(pytester: pytest.Pytester) -> None:
    data = settings_of(pytester, "--tfserving-backend=embedded")
    root = pytester.path
    assert data["perf_window"] == 1.0 and data["perf_warmup"] == 2.0
    assert data["perf_min_windows"] == 6 and data["perf_max_windows"] == 20
    assert data["perf_tolerance"] == pytest.approx(0.10)
    assert data["update_baselines"] is False
    assert data["tfserving_gpus"] is None
    assert (data["locust_master_host"], data["locust_expect_workers"]) == (None, None)
    assert data["baselines_dir"] == str(root / "baselines")
    assert data["tfserving_model_cache"] == str(root / ".tfserving-cache")


def test_ini_keys_apply_and_cli_beats_ini(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makeini(
        f"""
        [pytest]
        tfserving_backend = embedded
        perf_window = 0.25
        perf_min_windows = 3
        perf_max_windows = 7
        perf_tolerance = 0.05
        tfserving_gpus = device=0,1
        update_baselines = true
        baselines_dir = my-baselines
        tfserving_model_cache = {tmp_path / "cache"}
        perf_hardware_mismatch = fail
        locust_master_host = 0.0.0.0:5557
        locust_expect_workers = 3
        """
    )
    data = settings_of(pytester)
    assert data["perf_window"] == 0.25
    assert (data["perf_min_windows"], data["perf_max_windows"]) == (3, 7)
    assert data["perf_tolerance"] == pytest.approx(0.05)
    assert data["tfserving_gpus"] == "device=0,1"
    assert data["update_baselines"] is True
    assert data["baselines_dir"] == str(pytester.path / "my-baselines"), "relative paths follow the rootdir"
    assert data["tfserving_model_cache"] == str(tmp_path / "cache")
    assert data["perf_hardware_mismatch"] == "fail"
    assert (data["locust_master_host"], data["locust_expect_workers"]) == ("0.0.0.0:5557", 3)

    data = settings_of(
        pytester,
        "--perf-window=0.75",
        "--perf-max-windows=9",
        "--perf-hardware-mismatch=warn",
        "--baselines-dir=other",
        "--tfserving-gpus=none",
        "--locust-expect-workers=5",
    )
    assert data["perf_window"] == 0.75
    assert (data["perf_min_windows"], data["perf_max_windows"]) == (3, 9), "ini keeps what CLI leaves alone"
    assert data["perf_hardware_mismatch"] == "warn"
    assert data["baselines_dir"] == str(pytester.path / "other")
    assert data["tfserving_gpus"] is None
    assert (data["locust_master_host"], data["locust_expect_workers"]) == ("0.0.0.0:5557", 5)


BAD_VALUES = [
    (
        ("--tfserving-backend=nope",),
        "*--tfserving-backend*'nope' is not one of auto, docker, binary, embedded, external*",
    ),
    (("--perf-window=-1",), "*--perf-window*'-1' must be*> 0*"),
    (("--perf-warmup=0",), "*--perf-warmup*'0' must be*> 0*"),
    (("--perf-tolerance=2",), "*--perf-tolerance*'2' must be a fraction in [[]0, 1), e.g. 0.1 for 10%*"),
    (("--tfserving-gpus=abc",), "*--tfserving-gpus*'abc': use none, all, a count like 2, or device ids*"),
    (("--perf-min-windows=0",), "*--perf-min-windows*must be a positive integer*"),
    (
        ("--perf-min-windows=8", "--perf-max-windows=4"),
        "*--perf-min-windows (8) exceeds --perf-max-windows (4)*raise the maximum or lower the minimum*",
    ),
    (
        ("--tfserving-backend=external",),
        "*--tfserving-backend=external needs both --tfserving-target HOST:PORT*--tfserving-rest-url*",
    ),
    (
        ("--tfserving-backend=external", "--tfserving-target=127.0.0.1:8500"),
        "*--tfserving-backend=external needs both*--tfserving-rest-url*",
    ),
    (("--locust-expect-workers=0",), "*--locust-expect-workers*'0' must be a positive integer*"),
    (("--locust-master-host=host:port",), "*--locust-master-host*'host:port' is not HOST or HOST:PORT*"),
    (("--redis-backend=nope",), "*--redis-backend*'nope' is not one of auto, local, docker, external*"),
    (("--perf-hardware-mismatch=maybe",), "*--perf-hardware-mismatch*'maybe' is not one of fail, warn*"),
    (
        ("--tfserving-model-variant=int4",),
        "*--tfserving-model-variant*'int4' is not one of fp32, fp16, int8-dynamic, int8*",
    ),
]


@pytest.mark.parametrize(("args", "message"), BAD_VALUES, ids=[" ".join(a) for a, _ in BAD_VALUES])
def test_bad_cli_value_is_a_usage_error_naming_valid_values(
    pytester: pytest.Pytester, args: tuple[str, ...], message: str
) -> None:
    pytester.makepyfile("def test_never_runs(): pass")
    result = pytester.runpytest("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: " + message])
    result.stdout.no_fnmatch_line("*test_never_runs*")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--perf-window=abc",), "*--perf-window: 'abc' must be a number > 0*"),
        (("--perf-window=nan",), "*--perf-window: 'nan' must be a number > 0*"),
        (("--tfserving-startup-timeout=inf",), "*--tfserving-startup-timeout: 'inf' must be a number > 0*"),
        (("--perf-min-windows=x",), "*--perf-min-windows: 'x' must be a positive integer*"),
        (("--perf-tolerance=ten",), "*--perf-tolerance: 'ten' must be a fraction in [[]0, 1)*"),
    ],
)
def test_non_numeric_value_names_what_is_expected(
    pytester: pytest.Pytester, args: tuple[str, ...], message: str
) -> None:
    result = pytester.runpytest("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_bad_ini_value_names_the_ini_key(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        update_baselines = maybe
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: ini update_baselines: 'maybe' is not a boolean (true/false)"])


def test_docker_backend_without_engine_names_the_alternatives(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)
    pytester.makepyfile("def test_never_runs(): pass")
    result = pytester.runpytest("-p", "no:cacheprovider", "--tfserving-backend=docker")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: --tfserving-backend=docker needs a running Docker-compatible engine*"
            f"{NO_ENGINE}*--tfserving-backend=embedded|binary|external*"
        ]
    )


def test_header_names_backend_and_reason(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile("def test_ok(): pass")
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--tfserving-backend=embedded", "--baselines-dir=bl"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["tfserving: backend embedded: requested", f"tfserving: baselines {pytester.path / 'bl'}"]
    )

    # auto: no engine answers and no binary at the given path -> embedded, and the header says why.
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)
    missing = pytester.path / "no-such-dir" / "tensorflow_model_server"
    result = pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "--tfserving-backend=auto",
        f"--tfserving-binary={missing}",
        "--update-baselines",
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            f"tfserving: backend embedded: no docker engine at {NO_ENGINE} (*) and no {missing} at that path",
            "tfserving: baselines * (updating)",
        ]
    )
