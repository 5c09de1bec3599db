"""Regenerate the Python protobuf and gRPC stubs from protos/.

Usage: python scripts/gen_protos.py [OUT_DIR]

Stubs land at OUT_DIR/taskmesh/<area>/v1/ (default: the repository root), the
import path the proto packages imply. The test suite regenerates into a
temporary directory and compares, so committed stubs never drift.
"""

from __future__ import annotations

import sys
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"


def generate(out: Path) -> list[Path]:
    # protos/google holds imported googleapis definitions (google/rpc/status.proto): their
    # stubs come from the googleapis-common-protos package, so only taskmesh's are generated.
    sources = sorted((PROTOS / "taskmesh").rglob("*.proto"))
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTOS}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *(str(p) for p in sources),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    # Package markers, so the stubs import as regular packages.
    for src in sources:
        pkg = out / src.parent.relative_to(PROTOS)
        while pkg != out:
            init = pkg / "__init__.py"
            if not init.exists() and pkg.name != "taskmesh":
                init.write_text("")
            pkg = pkg.parent
    return sorted(p for p in (out / "taskmesh").rglob("*_pb2*") if p.is_file())


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT
    for path in generate(target):
        print(path.relative_to(target))
