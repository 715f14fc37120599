"""``pytest-tfserving init``: the starting files for a repository that adopts the plugin.

It writes a conftest with a seeded example model, a perf test, a note in baselines/, the CI workflow,
and the ``.gitignore`` lines for what sessions write. It never overwrites: an existing file is left as
it is and named, so running it again after editing the files changes nothing. The one file it adds
to rather than creates is ``.gitignore``, and only lines it lacks.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

TEMPLATES = "scaffold_templates"
# target path in the repository -> template file in the package
FILES: tuple[tuple[str, str], ...] = (
    ("tests/perf/conftest.py", "conftest.py.txt"),
    ("tests/perf/test_tfserving_perf.py", "test_tfserving_perf.py.txt"),
    ("baselines/README.md", "baselines_README.md.txt"),
    (".github/workflows/perf.yml", "perf.yml.txt"),
)
GITIGNORE_LINES: tuple[str, ...] = (
    ".tfserving-cache/",  # built model variants, keyed by content: rebuilt on demand, never committed
    "reports/",  # --perf-report-md/-json/-plots output of the workflow
)
NEXT_STEPS = """\
Next:
  pip install 'pytest-tfserving[tf]'     # TensorFlow builds the model variants
  replace the example model in tests/perf/conftest.py with yours (keep it seeded)
  pytest -m perf                         # measures; a plain `pytest` leaves perf tests out
  pytest -m perf --update-baselines      # records baselines/ on this machine: commit them
Run pytest from the repository root: baselines/ and .tfserving-cache/ are made in pytest's rootdir."""


@dataclass(frozen=True)
class Action:
    """What init did to one path: "wrote", "skipped" (it exists), "added" or "kept" (.gitignore)."""

    verb: str
    path: str
    detail: str = ""

    def line(self) -> str:
        return f"  {self.verb:<8}{self.path}" + (f"  ({self.detail})" if self.detail else "")


def template_text(name: str) -> str:
    """A template shipped in the package (``pytest_tfserving/scaffold_templates/``)."""
    return (resources.files("pytest_tfserving") / TEMPLATES / name).read_text(encoding="utf-8")


def _write_new(root: Path, relative: str, text: str) -> Action:
    path = root / relative
    if path.exists() or path.is_symlink():
        return Action("skipped", relative, "exists; left as it is")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "x", encoding="utf-8") as handle:  # "x": never replace a file created meanwhile
        handle.write(text)
    return Action("wrote", relative)


def _ignore_lines(root: Path) -> Action:
    path = root / ".gitignore"
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    present = {line.strip() for line in existing.splitlines()}
    missing = [line for line in GITIGNORE_LINES if line not in present and line.rstrip("/") not in present]
    if not missing:
        return Action("kept", ".gitignore", "already ignores " + ", ".join(GITIGNORE_LINES))
    prefix = "" if not existing or existing.endswith("\n") else "\n"
    block = "# pytest-tfserving: built model variants and reports\n" + "\n".join(missing) + "\n"
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(prefix + ("\n" if existing.strip() else "") + block)
    return Action("added", ".gitignore", ", ".join(missing))


def init_repository(root: Path) -> list[Action]:
    """Write the starting files into ``root`` (an existing directory); returns what happened to each."""
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a directory; create it or pass the repository's root")
    actions = [_write_new(root, relative, template_text(name)) for relative, name in FILES]
    actions.append(_ignore_lines(root))
    return actions


def main(argv: Sequence[str] | None = None) -> int:
    """``pytest-tfserving init [DIRECTORY]`` (also ``python -m pytest_tfserving init``)."""
    parser = argparse.ArgumentParser(
        prog="pytest-tfserving", description="Tools for repositories that use the pytest-tfserving plugin."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    init = commands.add_parser(
        "init",
        help="write a starter perf test, conftest, workflow and .gitignore lines (never overwrites)",
        description="Write a starter conftest (seeded example model), a perf test, baselines/README.md, "
        ".github/workflows/perf.yml and .gitignore lines into DIRECTORY. Existing files are left as "
        "they are; .gitignore only gets the lines it lacks.",
    )
    init.add_argument("directory", nargs="?", default=".", help="the repository's root (default: .)")
    args = parser.parse_args(argv)

    root = Path(args.directory)
    try:
        actions = init_repository(root)
    except OSError as exc:
        print(f"pytest-tfserving init: {exc}", file=sys.stderr)
        return 1
    print(f"pytest-tfserving init: {root.resolve()}")
    print("\n".join(action.line() for action in actions))
    if any(action.verb == "skipped" for action in actions):
        print("Skipped files were not changed; compare them with the templates if you want the new parts.")
    print(NEXT_STEPS)
    return 0
