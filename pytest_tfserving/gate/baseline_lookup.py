"""Which baseline a measurement is judged against: the working tree's, or (--baseline-ref) a git ref's.

Judging a pull request against ``main``'s copy keeps a PR from loosening its own baseline; the notes
say how the two copies differ. No pytest imports.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from pytest_tfserving.gate.baselines import (
    Baseline,
    BaselineError,
    baseline_path,
    load_baseline,
    read_baseline_from_git,
)


def repo_root(rootdir: Path) -> Path:
    """The top of the git work tree holding ``rootdir``; a BaselineError when there is none."""
    done = subprocess.run(
        ["git", "-C", str(rootdir), "rev-parse", "--show-toplevel"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BaselineError(
            f"--baseline-ref needs a git repository; {rootdir} is not inside one ({done.stderr.strip()})"
        )
    return Path(done.stdout.strip())


@dataclass(frozen=True)
class BaselineLookup:
    """Finds baselines under ``baselines_dir``, read from git ``ref`` when one is given."""

    baselines_dir: Path
    ref: str | None
    rootdir: Path  # where git is asked for the repository (pytest's rootdir)

    def find(self, mid: str) -> tuple[Baseline | None, list[str]]:
        """The baseline to judge against, and notes (e.g. how the ref's copy differs from the tree's)."""
        path = baseline_path(self.baselines_dir, mid)
        local = load_baseline(path, mid)
        ref = self.ref
        if ref is None:
            return local, []
        root = repo_root(self.rootdir)
        relative = path.resolve().relative_to(root.resolve())
        from_ref = read_baseline_from_git(ref, root, relative)
        notes: list[str] = []
        if from_ref is None and local is not None:
            notes.append(f"{relative} is new in the working tree (absent at {ref}); judged without it")
        elif from_ref is not None and local is None:
            notes.append(f"{relative} exists at {ref} but not in the working tree")
        elif from_ref is not None and local is not None and from_ref.measurement != local.measurement:
            notes.append(f"{relative} differs from its copy at {ref}; judged against {ref}")
        return from_ref, notes
