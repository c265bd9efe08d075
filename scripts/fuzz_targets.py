"""Coverage-guided fuzz targets (atheris) for the request decoder, the counter and the image headers.

    nox -s fuzz                      # every target, 20000 runs each
    nox -s fuzz -- decode -runs=200000
    nox -s fuzz -- images -max_total_time=600

Not part of the normal test run (pytest collects only test_*.py). The corpus of each target is
seeded from the recorded dev bodies (tests/data/*.jsonl) into `.fuzz/corpus/<target>/`, and any
crash input is written to `.fuzz/crashes/`. A finding is an exception other than the documented
ones: `InvalidRequestError`, `UnresolvedError` (bodies naming server-side state) and, for the image
readers, `ImageError`. Every finding becomes a regression test in tests/test_hostile.py.
"""

from __future__ import annotations

import base64
import contextlib
import json
import sys
from collections.abc import Callable
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from counter import InvalidRequestError, UnresolvedError, count_input_tokens, decode_request
    from counter._images import ImageError, image_size, image_size_from_bytes

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
WORK = ROOT / ".fuzz"


def fuzz_decode(data: bytes) -> None:
    with contextlib.suppress(InvalidRequestError):
        decode_request(data)


def fuzz_count(data: bytes) -> None:
    with contextlib.suppress(InvalidRequestError, UnresolvedError):
        count_input_tokens(data)


def fuzz_images(data: bytes) -> None:
    for call in (
        lambda: image_size_from_bytes(data),
        lambda: image_size("data:image/png;base64," + base64.b64encode(data).decode()),
        lambda: image_size("data:image/png;base64," + data.decode("latin-1")),  # junk in the base64
    ):
        try:
            size = call()
        except ImageError:
            continue
        assert size.width > 0
        assert size.height > 0


TARGETS: dict[str, Callable[[bytes], None]] = {"decode": fuzz_decode, "count": fuzz_count, "images": fuzz_images}


def _seed_bodies() -> list[bytes]:
    lines = (DATA / "responses_dev.jsonl").read_text().splitlines()
    return [json.dumps(json.loads(line)["request"]).encode() for line in lines if line.strip()]


def _seed_images() -> list[bytes]:
    """Image payloads found in the dev bodies' data URLs (the headers are what matters)."""
    out = []
    for path in DATA.glob("*.jsonl"):
        for token in path.read_text().split('"'):
            if token.startswith("data:image/") and ";base64," in token:
                try:
                    out.append(base64.b64decode(token.split(",", 1)[1] + "==")[:4096])
                except ValueError:
                    continue
    return out


def seed(target: str) -> Path:
    """Write the seed corpus of `target` (once) and return its directory."""
    corpus = WORK / "corpus" / target
    corpus.mkdir(parents=True, exist_ok=True)
    if not any(corpus.iterdir()):
        seeds = _seed_images() if target == "images" else _seed_bodies()
        for index, data in enumerate(seeds):
            (corpus / f"seed-{index:04d}").write_bytes(data)
    return corpus


def main(argv: list[str]) -> None:
    names = [a for a in argv[1:] if not a.startswith("-")] or list(TARGETS)
    flags = [a for a in argv[1:] if a.startswith("-")]
    if not any(f.startswith(("-runs=", "-max_total_time=")) for f in flags):
        flags.append("-runs=20000")
    if len(names) != 1:
        # libFuzzer runs one target per process: run each in turn in a child process.
        import subprocess

        for name in names:
            subprocess.run([sys.executable, __file__, name, *flags], check=True)
        return
    (name,) = names
    crashes = WORK / "crashes"
    crashes.mkdir(parents=True, exist_ok=True)
    corpus = seed(name)
    print(f"fuzzing {name}: corpus {corpus}, {' '.join(flags)}", flush=True)
    atheris.Setup([sys.argv[0], *flags, f"-artifact_prefix={crashes}/{name}-", str(corpus)], TARGETS[name])
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
