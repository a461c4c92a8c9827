"""Lint the contracts under proto/ with buf and check that they are `buf format`ted."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from gen_protos import REPO_ROOT, googleapis_dir, proto_files, venv_tool

IMPORT_RE = re.compile(r'^\s*import\s+(?:public\s+|weak\s+)?"([^"]+)"\s*;', re.MULTILINE)
# buf ships the well-known types itself; a second copy would clash with them.
BUILTIN_PREFIX = "google/protobuf/"
GOOGLE_DIR = "google"


def imports_of(path: Path) -> list[str]:
    """Import paths named by one .proto file."""
    return IMPORT_RE.findall(path.read_text(encoding="utf-8"))


def google_dependencies(proto_root: Path, googleapis: Path) -> list[str]:
    """Every googleapis file the contracts import, directly or through another one."""
    pending: list[str] = [name for path in proto_files(proto_root) for name in imports_of(path)]
    found: set[str] = set()
    while pending:
        name = pending.pop()
        if name in found or name.startswith(BUILTIN_PREFIX) or (proto_root / name).is_file():
            continue
        source = googleapis / name
        # An import found nowhere is left for buf to report with its file and line.
        if source.is_file():
            found.add(name)
            pending.extend(imports_of(source))
    return sorted(found)


def build_workspace(proto_root: Path, googleapis: Path, workspace: Path) -> bool:
    """Copy the module and the googleapis files it imports; tell whether any were needed."""
    module = workspace / "proto"
    shutil.copytree(proto_root, module)
    dependencies = google_dependencies(proto_root, googleapis)
    for name in dependencies:
        target = module / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(googleapis / name, target)
    return bool(dependencies)


def run(command: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a buf command, capturing what it reports."""
    return subprocess.run(list(command), cwd=cwd, capture_output=True, text=True, check=False)


def report(title: str, result: subprocess.CompletedProcess[str]) -> bool:
    """Print a failed step's findings; tell whether the step passed."""
    if result.returncode == 0:
        print(f"{title}: ok")
        return True
    print(f"{title}: failed (exit status {result.returncode})")
    for stream in (result.stdout, result.stderr):
        if stream.strip():
            print(stream.rstrip())
    return False


def lint(buf: str, root: Path, googleapis: Path) -> subprocess.CompletedProcess[str]:
    """buf lint over a scratch copy of proto/ in which the googleapis imports resolve."""
    with tempfile.TemporaryDirectory(prefix="lint-protos-") as scratch:
        workspace = Path(scratch)
        command = [buf, "lint", "proto"]
        if build_workspace(root / "proto", googleapis, workspace):
            # Available to imports, but Google's files follow Google's rules, not ours.
            command += ["--exclude-path", f"proto/{GOOGLE_DIR}"]
        # Run from the scratch root so findings read proto/ecommerce/..., as in the repo.
        return run(command, cwd=workspace)


def check_format(buf: str, root: Path, fix: bool) -> subprocess.CompletedProcess[str]:
    """buf format over proto/: a diff of what is off, after rewriting in place with fix."""
    if fix:
        run([buf, "format", "proto", "--write"], cwd=root)
    return run([buf, "format", "proto", "--diff", "--exit-code"], cwd=root)


def main(argv: Iterable[str] | None = None) -> int:
    """Exit 0 when buf finds nothing to lint or reformat, 1 otherwise."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--root",
        type=Path,
        default=REPO_ROOT,
        help="tree holding proto/ (default: this repository)",
    )
    parser.add_argument(
        "--fix", action="store_true", help="rewrite proto files with `buf format` first"
    )
    args = parser.parse_args(None if argv is None else list(argv))
    root: Path = args.root.resolve()
    if not (root / "proto").is_dir():
        print(f"no proto/ directory in {root}", file=sys.stderr)
        return 2
    buf = venv_tool("buf")
    googleapis = googleapis_dir()
    lint_ok = report("buf lint", lint(buf, root, googleapis))
    format_ok = report("buf format", check_format(buf, root, args.fix))
    return 0 if lint_ok and format_ok else 1


if __name__ == "__main__":
    sys.exit(main())
