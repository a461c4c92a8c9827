"""Generate the Python package ecommerce/ from the contracts under proto/ (`make proto`)."""

from __future__ import annotations

import argparse
import importlib.resources
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from google.protobuf import descriptor_pb2

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "ecommerce"
INIT_TEXT = '"""Generated from proto/ by `make proto`; do not edit."""\n'
# Byte-code caches appear as soon as the package is imported; they are not generated output.
IGNORED_DIRS = frozenset({"__pycache__"})
IGNORED_SUFFIXES = frozenset({".pyc"})


def googleapis_dir() -> Path:
    """The directory holding google/api/*.proto, as installed by googleapis-common-protos."""
    from google.api import field_behavior_pb2

    root = Path(field_behavior_pb2.__file__).resolve().parents[2]
    if not (root / "google" / "api" / "field_behavior.proto").is_file():
        raise SystemExit(f"googleapis-common-protos at {root} ships no .proto files; reinstall it")
    return root


def well_known_dir() -> Path:
    """The directory holding google/protobuf/*.proto bundled with grpcio-tools."""
    return Path(str(importlib.resources.files("grpc_tools") / "_proto"))


def venv_tool(name: str) -> str:
    """Path of a console script installed next to this interpreter, else one on PATH."""
    # Not resolved: in a virtualenv sys.executable is a symlink and its own bin/ is wanted.
    candidate = Path(sys.executable).parent / name
    if candidate.is_file():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} not found next to {sys.executable} nor on PATH")
    return found


def proto_files(proto_root: Path) -> list[Path]:
    """Every .proto under proto_root, sorted so that protoc sees them in a stable order."""
    return sorted(proto_root.rglob("*.proto"))


def run_protoc(proto_root: Path, out_dir: Path, descriptor_set: Path) -> None:
    """Compile every contract into out_dir: messages, gRPC stubs and typed stubs of both."""
    files = proto_files(proto_root)
    if not files:
        raise SystemExit(f"no .proto files under {proto_root}")
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"--proto_path={proto_root}",
        # The well-known types go before googleapis so that the copies matching this protoc
        # win should googleapis-common-protos ever ship its own.
        f"--proto_path={well_known_dir()}",
        f"--proto_path={googleapis_dir()}",
        f"--plugin=protoc-gen-mypy={venv_tool('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={venv_tool('protoc-gen-mypy_grpc')}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        # `quiet` stops mypy-protobuf from announcing every file it writes.
        f"--mypy_out=quiet:{out_dir}",
        f"--mypy_grpc_out=quiet:{out_dir}",
        f"--descriptor_set_out={descriptor_set}",
        *(str(path) for path in files),
    ]
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        raise SystemExit(f"protoc failed with exit status {result.returncode}")


def drop_empty_grpc_modules(out_dir: Path, descriptor_set: Path) -> None:
    """Remove the gRPC modules protoc writes even for files that declare no service."""
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes()).file
    for proto in files:
        if proto.service:
            continue
        stem = proto.name.removesuffix(".proto")
        for suffix in ("_pb2_grpc.py", "_pb2_grpc.pyi"):
            (out_dir / f"{stem}{suffix}").unlink(missing_ok=True)


def add_package_files(package_dir: Path) -> None:
    """Make every generated directory an importable, typed package."""
    for directory in sorted([package_dir, *(p for p in package_dir.rglob("*") if p.is_dir())]):
        (directory / "__init__.py").write_text(INIT_TEXT, encoding="utf-8")
    (package_dir / "py.typed").write_text("", encoding="utf-8")


def generate(proto_root: Path, work_dir: Path) -> Path:
    """Generate the whole package from scratch under work_dir and return its directory."""
    out_dir = work_dir / "out"
    out_dir.mkdir()
    descriptor_set = work_dir / "descriptors.binpb"
    run_protoc(proto_root, out_dir, descriptor_set)
    drop_empty_grpc_modules(out_dir, descriptor_set)
    produced = sorted(p.name for p in out_dir.iterdir())
    if produced != [PACKAGE]:
        # Anything else means a proto outside package ecommerce.*, which would land
        # outside the package this script owns.
        raise SystemExit(f"protoc produced {produced}; every proto must live under {PACKAGE}/")
    package_dir = out_dir / PACKAGE
    add_package_files(package_dir)
    return package_dir


def tree_files(root: Path) -> dict[str, Path]:
    """Generated files under root by relative POSIX path, caches left out."""
    files: dict[str, Path] = {}
    if not root.is_dir():
        return files
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_DIRS)
        for filename in filenames:
            path = Path(dirpath) / filename
            if path.suffix not in IGNORED_SUFFIXES:
                files[path.relative_to(root).as_posix()] = path
    return files


def compare_trees(expected: Path, actual: Path) -> list[str]:
    """One line per file that is missing from, extra in, or different in actual."""
    want = tree_files(expected)
    have = tree_files(actual)
    problems: list[str] = []
    for name in sorted(want.keys() | have.keys()):
        shown = f"{PACKAGE}/{name}"
        if name not in have:
            problems.append(f"missing: {shown}")
        elif name not in want:
            problems.append(f"extra:   {shown}")
        elif want[name].read_bytes() != have[name].read_bytes():
            problems.append(f"differs: {shown}")
    return problems


def replace_package(new_package: Path, target: Path) -> None:
    """Swap the freshly generated package in, so no stale module survives a regeneration."""
    retired = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        target.rename(retired)
    try:
        new_package.rename(target)
    except OSError:
        if retired.exists():
            retired.rename(target)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Regenerate ecommerce/, or with --check report whether it is out of date."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--check",
        action="store_true",
        help="change nothing; exit 1 listing the files that differ from a fresh generation",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=REPO_ROOT,
        help="tree holding proto/ and ecommerce/ (default: this repository)",
    )
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    proto_root = root / "proto"
    target = root / PACKAGE
    if not proto_root.is_dir():
        print(f"no proto/ directory in {root}", file=sys.stderr)
        return 2

    # Writing generates next to the target so that the final swap is a rename on one
    # file system; checking can use any scratch space.
    with tempfile.TemporaryDirectory(
        prefix=".gen-protos-", dir=None if args.check else root
    ) as scratch:
        fresh = generate(proto_root, Path(scratch))
        if args.check:
            problems = compare_trees(fresh, target)
            if problems:
                print(
                    f"{target} is out of date with {proto_root}; run `make proto`:",
                    file=sys.stderr,
                )
                for problem in problems:
                    print(f"  {problem}", file=sys.stderr)
                return 1
            print(f"{target} is up to date with {proto_root}")
            return 0
        replace_package(fresh, target)
    print(f"generated {len(tree_files(target))} files into {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
