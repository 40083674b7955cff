"""Build hook: the wheel and the sdist carry the protobuf code generated from protos/.

src/bucketvault/v1 is git-ignored (`make proto` makes it in a checkout). Here build_py runs
grpc_tools.protoc with mypy-protobuf (both in [build-system] requires, pinned: the generated
code names the grpcio and protobuf versions it needs at run time) into the build directory,
and sdist writes the same files into its release tree next to protos/. Editable installs
skip it and keep using `make proto`, so a build never writes into the source tree.
Everything else about the package is in pyproject.toml.
"""

from __future__ import annotations

import shlex
import shutil
import sys
import tempfile
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

ROOT = Path(__file__).resolve().parent
PROTOS = ROOT / "protos"
PACKAGE = Path("bucketvault", "v1")
INIT = '"""Generated from protos/bucketvault/v1 by the build (or `make proto`); do not edit."""\n'


def _plugin(directory: Path, name: str, function: str) -> Path:
    # protoc wants an executable; mypy-protobuf's console scripts need not be on PATH
    # (a --no-isolation build from an unactivated venv), so call its entry point directly.
    path = directory / f"protoc-gen-{name}"
    code = f"import sys; from mypy_protobuf.main import {function}; sys.exit({function}())"
    path.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -c {shlex.quote(code)}\n")
    path.chmod(0o755)
    return path


def generate(out: Path) -> list[Path]:
    """Compile protos/bucketvault/v1/*.proto into out/bucketvault/v1; return the files."""
    import grpc_tools  # noqa: PLC0415 - a build requirement, not a runtime one
    from grpc_tools import protoc  # noqa: PLC0415

    sources = sorted(p.relative_to(PROTOS).as_posix() for p in (PROTOS / PACKAGE).glob("*.proto"))
    if not sources:
        raise SystemExit(f"build: no .proto files under {PROTOS / PACKAGE}")
    target = out / PACKAGE
    # Remove, never overwrite: sdist hard-links the checkout's files into its release tree.
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    well_known = Path(grpc_tools.__file__).parent / "_proto"  # google/protobuf/*.proto
    with tempfile.TemporaryDirectory() as tmp:
        mypy = _plugin(Path(tmp), "mypy", "main")
        mypy_grpc = _plugin(Path(tmp), "mypy_grpc", "grpc")
        args = [
            "grpc_tools.protoc",
            f"-I{PROTOS}",
            f"-I{well_known}",
            f"--plugin=protoc-gen-mypy={mypy}",
            f"--plugin=protoc-gen-mypy_grpc={mypy_grpc}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            f"--mypy_out={out}",
            f"--mypy_grpc_out={out}",
            *sources,
        ]
        code = protoc.main(args)
    if code != 0:
        raise SystemExit(f"build: grpc_tools.protoc failed ({code})")
    (target / "__init__.py").write_text(INIT)
    return sorted(target.iterdir())


class BuildPyWithProtos(build_py):
    """build_py, plus bucketvault/v1 generated into the build directory."""

    def run(self) -> None:
        super().run()
        if not self.editable_mode:
            self._generated = generate(Path(self.build_lib))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = super().get_outputs(include_bytecode)
        return sorted({*outputs, *(str(p) for p in getattr(self, "_generated", ()))})


class SdistWithProtos(sdist):
    """sdist, plus the generated code (protos/ itself comes in through MANIFEST.in)."""

    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        generate(Path(base_dir, "src"))


setup(cmdclass={"build_py": BuildPyWithProtos, "sdist": SdistWithProtos})
