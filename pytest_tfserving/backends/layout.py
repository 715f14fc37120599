"""Bridge to ``serving.render``: render a ServerSpec for one backend and write its config files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pytest_tfserving.serving.spec import ModelSpec, ServerSpec


def host_model_path(model: ModelSpec) -> str:
    """Process backends read models in place, by absolute host path."""
    return str(Path(model.base_path).resolve())


def render_into(
    spec: ServerSpec,
    *,
    grpc_port: int,
    rest_port: int,
    host_config_dir: Path,
    server_config_dir: str,
    model_path: Callable[[ModelSpec], str],
) -> tuple[str, ...]:
    """Write the rendered config files into ``host_config_dir``; return the server flags.

    ``server_config_dir`` is the same directory as the server sees it (``/config`` in a container).
    """
    from pytest_tfserving.serving.render import ServerLayout, render_server

    layout = ServerLayout(
        grpc_port=grpc_port, rest_port=rest_port, config_dir=server_config_dir, model_path=model_path
    )
    rendered = render_server(spec, layout)
    host_config_dir.mkdir(parents=True, exist_ok=True)
    prefix = server_config_dir.rstrip("/") + "/"
    for name, text in rendered.files.items():
        relative = name[len(prefix) :] if name.startswith(prefix) else name
        (host_config_dir / relative).write_text(text)
    return tuple(rendered.flags)
