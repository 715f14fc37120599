"""The ``[tf]`` extra: is TensorFlow installed here, and the error that says how to install it.

``pip install pytest-tfserving`` is the light install: load generator, gate, reports, the docker, binary
and external backends, Redis. TensorFlow (about 2 GB with its dependencies) comes with the ``[tf]``
extra: the embedded server and model variant builds need it. Checks look modules up without importing
them, so asking costs nothing and never starts TensorFlow. No pytest imports.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

TF_INSTALL = "pip install 'pytest-tfserving[tf]'"
EMBEDDED_SERVER_MODULES = ("tensorflow", "tensorflow_serving")
"""What the embedded server imports: TensorFlow and tensorflow-serving-api, both in the [tf] extra."""
VARIANT_BUILD_MODULES = ("tensorflow",)


class MissingTensorFlow(ImportError):
    """A feature needs the [tf] extra, which this environment lacks; the message names the pip command."""


def missing_modules(modules: Sequence[str]) -> list[str]:
    """The top-level modules of ``modules`` that cannot be imported here (found without importing)."""
    return [name for name in modules if importlib.util.find_spec(name) is None]


def tf_extra_problem(feature: str, modules: Sequence[str] = VARIANT_BUILD_MODULES) -> str | None:
    """None when ``feature`` has what it imports, else one sentence naming what is missing and the fix."""
    missing = missing_modules(modules)
    if not missing:
        return None
    return (
        f"{feature} needs TensorFlow, which this environment lacks (no module {', '.join(missing)}); "
        f"install the [tf] extra: {TF_INSTALL}"
    )


def require_tf_extra(feature: str, modules: Sequence[str] = VARIANT_BUILD_MODULES) -> None:
    """Raise MissingTensorFlow naming the pip command when ``feature``'s TensorFlow modules are missing."""
    problem = tf_extra_problem(feature, modules)
    if problem is not None:
        raise MissingTensorFlow(problem)
