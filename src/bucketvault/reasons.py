"""Every ``google.rpc.ErrorInfo.reason`` bucketvault returns, in one catalogue.

The data lives in reasons.tsv next to this module. tests/core/test_reasons.py checks it
against every reason the code uses, and the README's error table is generated from it
(``python -m bucketvault.reasons --write README.md``, or ``make docs``). A reason is
stable once shipped: add, never rename.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from bucketvault import errors
from bucketvault.errors import BucketVaultError


@dataclass(frozen=True)
class Reason:
    """One reason: its name, the error class it normally comes with, what it tells callers."""

    name: str
    # The error class (hence gRPC status) it is raised with; None when it is never an error.
    error: type[BucketVaultError] | None
    # One line for callers: what happened, what to do.
    meaning: str
    # Also returned as CheckMount's CheckResult.reason.
    check: bool = False
    # A SignedUrl.expiry_capped_by value: why a URL lives shorter than asked.
    expiry: bool = False


# Every error class by name, as reasons.tsv names them.
_ERRORS: dict[str, type[BucketVaultError]] = {
    name: value
    for name, value in vars(errors).items()
    if isinstance(value, type) and issubclass(value, BucketVaultError)
}


def _load() -> tuple[Reason, ...]:
    # The catalogue is data (reasons.tsv, shipped with the package): one line a reason,
    # tab-separated name, error class ("-": never an error), flags, meaning.
    text = resources.files("bucketvault").joinpath("reasons.tsv").read_text(encoding="utf-8")
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, error, flags, meaning = line.split("\t")
        marks = set(flags.split(","))
        out.append(
            Reason(
                name,
                None if error == "-" else _ERRORS[error],
                meaning,
                check="check" in marks,
                expiry="expiry" in marks,
            )
        )
    return tuple(out)


REASONS: tuple[Reason, ...] = _load()

BEGIN_MARKER = "<!-- reasons:begin -->"
END_MARKER = "<!-- reasons:end -->"


def _status(reason: Reason) -> str:
    parts = []
    if reason.error is not None:
        parts.append(f"`{reason.error.code.name}` ({reason.error.__name__})")
    if reason.check:
        parts.append("CheckMount result")
    if reason.expiry:
        parts.append("`expiry_capped_by`")
    return "; ".join(parts)


def markdown() -> str:
    """The README table: reason | status | meaning."""
    rows = ["| reason | status | meaning |", "| --- | --- | --- |"]
    rows += [f"| `{r.name}` | {_status(r)} | {r.meaning} |" for r in REASONS]
    return "\n".join(rows) + "\n"


def rewrite(text: str) -> str:
    """text with the section between the markers replaced by markdown()."""
    head, sep, rest = text.partition(BEGIN_MARKER)
    _, end, tail = rest.partition(END_MARKER)
    if not sep or not end:
        raise ValueError(f"{BEGIN_MARKER} ... {END_MARKER} not found")
    return f"{head}{BEGIN_MARKER}\n{markdown()}{END_MARKER}{tail}"


def main(argv: list[str]) -> int:
    """Print the table, or with ``--write FILE`` rewrite FILE's marked section."""
    if argv[:1] == ["--write"] and len(argv) == 2:
        path = Path(argv[1])
        path.write_text(rewrite(path.read_text(encoding="utf-8")), encoding="utf-8")
    elif argv:
        print("usage: python -m bucketvault.reasons [--write README.md]", file=sys.stderr)
        return 2
    else:
        sys.stdout.write(markdown())
    return 0


__all__ = ["BEGIN_MARKER", "END_MARKER", "REASONS", "Reason", "markdown", "rewrite"]

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
