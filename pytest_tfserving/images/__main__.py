"""``python -m pytest_tfserving.images {build,tag,lock,prune}``: build the stand-in images, print their
references, or re-pin the runtime dependency lock from this environment."""

from __future__ import annotations

import argparse
import sys

from pytest_tfserving.images.engine import EngineError
from pytest_tfserving.images.lock import LockError, write_lock
from pytest_tfserving.images.recipe import image_refs
from pytest_tfserving.images.rootfs import RootfsError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_tfserving.images", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    build_p = sub.add_parser("build", help="build the stand-in images unless they exist")
    build_p.add_argument("--force", action="store_true", help="rebuild every layer even if it exists")
    tag_p = sub.add_parser("tag", help="print the image references of the current inputs (no engine)")
    tag_p.add_argument("which", nargs="?", choices=("server", "redis", "all"), default="all")
    tag_p.add_argument(
        "--tag-only", action="store_true", help="print only the tag (for --tfserving-tag), not repository:tag"
    )
    sub.add_parser("lock", help="rewrite runtime-lock.txt from the installed distributions")
    sub.add_parser("prune", help="remove stand-in images built from other inputs (not the current tags)")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            from pytest_tfserving.images.build import build

            build(log=lambda line: print(line, flush=True), force=args.force)
        elif args.command == "tag":
            refs = image_refs()
            for which, ref in (("server", refs.server), ("redis", refs.redis)):
                if args.which in (which, "all"):
                    shown = ref.rpartition(":")[2] if args.tag_only else ref
                    print(shown if args.which == which else f"{which} {shown}")
        elif args.command == "prune":
            from pytest_tfserving.images.build import prune

            prune(log=lambda line: print(line, flush=True))
        else:
            print(f"wrote {write_lock()}")
    except (EngineError, LockError, RootfsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
