#!/usr/bin/env bash
# Mutation testing with mutmut: which small changes to the given source files leave the tests green?
# Prints the counts and every surviving mutant as a diff.
#
#   scripts/mutation.sh                                    # the files of [tool.mutmut] only_mutate
#   scripts/mutation.sh pytest_tfserving/gate/judge.py ... # these files instead
#
# A run takes minutes, and the tree may change meanwhile, so mutmut runs in a snapshot of it
# (MUTATION_DIR, default .mutation/, ignored by git): what is tested is the tree as it was at the start.
# mutmut 3 mutates its own copy of that snapshot (.mutation/mutants/) and never the sources.
# Afterwards `cd .mutation && ../.venv/bin/mutmut show NAME` shows one mutant again.
#
# Environment:
#   MUTATION_TESTS  pytest arguments selecting the tests (default: the config's, tests/unit/gate);
#                   every selected test must pass on the unmutated code, or mutmut stops
#   MUTATION_JOBS   mutants tested at once (default 2); runs under `nice -n 10`
#   MUTATION_DIR    the snapshot folder (default .mutation)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BIN=$(cd "${VENV_BIN:-.venv/bin}" && pwd)
DIR=${MUTATION_DIR:-.mutation}
JOBS=${MUTATION_JOBS:-2}

if [ ! -x "$BIN/mutmut" ]; then
  echo "error: mutmut is not installed; install the dev extra: $BIN/pip install -e '.[dev]'" >&2
  exit 1
fi
for file in "$@"; do
  if [[ ! -f $file || $file != pytest_tfserving/*.py ]]; then
    echo "error: $file is not a Python file under pytest_tfserving/" >&2
    exit 2
  fi
done

rm -rf "$DIR"
mkdir -p "$DIR"
tar --exclude=__pycache__ -cf - pyproject.toml conftest.py pytest_tfserving tests benchmarks | tar -xf - -C "$DIR"

# Point the snapshot's [tool.mutmut] at the files and tests asked for (one `key = [...]` line each).
"$BIN/python" - "$DIR/pyproject.toml" "$@" <<'EOF'
import json
import os
import re
import shlex
import sys
import tomllib
from pathlib import Path

path, files = Path(sys.argv[1]), sys.argv[2:]
text = path.read_text()
updates = {}
if files:
    updates["only_mutate"] = files
if os.environ.get("MUTATION_TESTS"):
    updates["pytest_add_cli_args_test_selection"] = shlex.split(os.environ["MUTATION_TESTS"])
for key, value in updates.items():
    text, count = re.subn(rf"(?m)^{key} = .*$", lambda _: f"{key} = {json.dumps(value)}", text)
    if count != 1:
        sys.exit(f"error: [tool.mutmut] in pyproject.toml needs exactly one `{key} = ...` line")
path.write_text(text)
config = tomllib.loads(text)["tool"]["mutmut"]
print("mutating:", " ".join(config["only_mutate"]))
print("tests:   ", " ".join(config["pytest_add_cli_args_test_selection"] + config.get("pytest_add_cli_args", [])))
EOF

cd "$DIR"
started=$SECONDS
echo "running mutmut ($JOBS at once); log: $DIR/mutmut-run.log"
status=0
nice -n 10 "$BIN/mutmut" run --max-children "$JOBS" >mutmut-run.log 2>&1 || status=$?
if [ "$status" != 0 ]; then
  tr '\r' '\n' <mutmut-run.log | tail -n 40
  echo "error: mutmut run failed (exit $status); see $DIR/mutmut-run.log" >&2
  exit "$status"
fi
"$BIN/mutmut" export-cicd-stats >/dev/null
echo "took $((SECONDS - started)) s"

# The counts, then each survivor (and each mutant no selected test runs) as a diff: every one is
# an equivalent mutant or a missing test.
"$BIN/python" - <<'EOF'
import json

from mutmut.mutation.data import SourceFileMutationData
from mutmut.mutation.diff_apply import get_diff_for_mutant
from mutmut.stats import status_by_exit_code
from mutmut.utils.file_utils import walk_mutatable_files

s = json.load(open("mutants/mutmut-cicd-stats.json"))
print(f"mutants {s['total']}: killed {s['killed']}, survived {s['survived']}, no tests {s['no_tests']}, "
      f"timeout {s['timeout']}, suspicious {s['suspicious']}, segfault {s['segfault']}, skipped {s['skipped']}")
survivors = []
for path in walk_mutatable_files():
    data = SourceFileMutationData(path=path)
    data.load()
    for name, code in data.exit_code_by_key.items():
        if status_by_exit_code[code] in ("survived", "no tests"):
            survivors.append(name)
            print(f"\n=== {name} ({status_by_exit_code[code]})")
            print(get_diff_for_mutant(name, path=path).rstrip())
with open("survivors.txt", "w") as out:
    out.writelines(f"{name}\n" for name in survivors)
print(f"\n{len(survivors)} surviving mutants")
EOF
echo "their names: $DIR/survivors.txt; one again: cd $DIR && $BIN/mutmut show NAME"
