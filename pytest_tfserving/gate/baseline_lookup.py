"""Which baseline a measurement is judged against: the working tree's, or (--baseline-ref) a git ref's.

Judging a pull request against ``main``'s copy keeps a PR from loosening its own baseline; the notes
say how the two copies differ. No pytest imports.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pytest_tfserving.gate.baselines import (
    Baseline,
    BaselineError,
    baseline_path,
    check_ref,
    load_baseline,
    parse_baseline,
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

    def measurements_at_ref(self) -> tuple[str, ...]:
        """The measurement ids (``nodeid`` or ``nodeid@name``) with a baseline under ``baselines_dir``
        at the ref, sorted: what a session must measure again so that a renamed test, a changed
        parametrize id or a dropped measurement name cannot leave its baseline unjudged.

        A file that is not a readable baseline is skipped here; its test meets the error when it
        looks its baseline up. A BaselineError when there is no ref or git cannot read it.
        """
        if self.ref is None:
            raise BaselineError("listing the baselines at a git ref needs --baseline-ref")
        return tuple(sorted({mid for text in self._texts_at_ref() if (mid := _nodeid_of(text))}))

    def all_baselines(self) -> list[Baseline]:
        """Every readable baseline the session judges against (the ref's under --baseline-ref, else the
        working tree's), for pooling the runner's drift (``gate.run_drift``). A file that does not
        parse is left out here; its own test meets the error with the fix."""
        found: list[Baseline] = []
        if self.ref is None:
            for path in sorted(self.baselines_dir.glob("*.json")):
                with contextlib.suppress(BaselineError, UnicodeDecodeError):
                    if (baseline := load_baseline(path)) is not None:
                        found.append(baseline)
            return found
        for text in self._texts_at_ref():
            with contextlib.suppress(BaselineError, UnicodeDecodeError):
                found.append(parse_baseline(text.decode("utf-8"), f"{self.ref}:{self.baselines_dir}"))
        return found

    def _texts_at_ref(self) -> list[bytes]:
        """The contents of the .json files under ``baselines_dir`` at the ref."""
        assert self.ref is not None
        root = repo_root(self.rootdir)
        try:
            relative = self.baselines_dir.resolve().relative_to(root.resolve())
        except ValueError:
            raise BaselineError(
                f"--baselines-dir {self.baselines_dir} is not inside the repository {root}"
            ) from None
        check_ref(self.ref, root)
        tree = f"{self.ref}^{{commit}}"
        listed = _git(root, "ls-tree", "-r", "-z", "--name-only", tree, "--", f"./{relative.as_posix()}")
        paths = [p for p in listed.decode("utf-8", "surrogateescape").split("\0") if p.endswith(".json")]
        if not paths:
            return []
        specs = "".join(f"{tree}:{p}\n" for p in paths).encode("utf-8", "surrogateescape")
        return batch_contents(_git(root, "cat-file", "--batch", stdin=specs))


def _git(root: Path, *args: str, stdin: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args], input=stdin, capture_output=True, check=False, timeout=120
        )
    except FileNotFoundError:
        raise BaselineError("git is not installed; --baseline-ref needs it") from None
    if done.returncode != 0:
        stderr = done.stderr.decode("utf-8", "replace").strip()
        raise BaselineError(f"git {' '.join(args[:2])} failed in {root}: {stderr}")
    return done.stdout


def batch_contents(output: bytes) -> list[bytes]:
    """The objects from ``git cat-file --batch`` output: ``<oid> <type> <size>\\n<content>\\n`` each, or
    ``<spec> missing\\n`` for an object that is not there."""
    contents: list[bytes] = []
    at = 0
    while at < len(output):
        header_end = output.index(b"\n", at)
        header = output[at:header_end].split()
        at = header_end + 1
        if len(header) == 3 and header[1] == b"blob" and header[2].isdigit():
            size = int(header[2])
            contents.append(output[at:at + size])
            at += size + 1
    return contents


def _nodeid_of(content: bytes) -> str | None:
    try:
        data = json.loads(content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    nodeid = data.get("nodeid") if isinstance(data, dict) else None
    return nodeid if isinstance(nodeid, str) and nodeid else None
