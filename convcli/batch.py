"""convcli forward over many images in one call: globs expanded ('photos/*.png'), every output
name checked before the work starts, the images run on a pool of threads (or processes, or
batches of files on a distributed cluster), and a file that fails is reported at the end
without stopping the others.

    run_batch(specs, out_dir=..., scheduler=...) -> BatchResult(done, failed, seconds)
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import (
    Executor,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    as_completed,
)
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .api import run_forward
from .errors import InputError
from .outputs import check_output
from .problem import ProblemSpec

Progress = Callable[[int, int], None]
GLOB = set("*?[")


@dataclass(frozen=True)
class Done:
    """One image's forward pass: where y went and how long it took."""

    image: Path
    written: Path
    seconds: float


@dataclass(frozen=True)
class Failed:
    """One image that failed, and why (one line)."""

    image: Path
    error: str


@dataclass(frozen=True)
class BatchResult:
    """The images done and failed, in input order, and the wall time of the whole batch."""

    done: list[Done] = field(default_factory=list)
    failed: list[Failed] = field(default_factory=list)
    seconds: float = 0.0
    scheduler: str = "threads"

    @property
    def rate(self) -> float:
        """Images per second over the whole batch."""
        return (len(self.done) + len(self.failed)) / self.seconds if self.seconds else 0.0


def expand(patterns: Sequence[Path]) -> list[Path]:
    """Each IMAGE as given: a path, or a glob pattern (quoted, so convcli expands it) that
    must match at least one file. Duplicates are dropped, order kept."""
    images: list[Path] = []
    for pattern in patterns:
        text = str(pattern)
        if Path(text).exists() or not GLOB & set(text):
            images.append(Path(text))
            continue
        matches = sorted(glob.glob(text, recursive=True))
        if not matches:
            raise InputError(f"no file matches {text}: check the pattern")
        images.extend(Path(m) for m in matches if Path(m).is_file())
    return list(dict.fromkeys(images))


def outputs(images: Sequence[Path], out_dir: Path | None, inputs: Sequence[Any]) -> list[Path]:
    """Where each y goes: OUT_DIR/NAME.forward.npy (or beside each image), checked before any
    work: the folder exists and is writable, no two images write the same file, no output is
    an input."""
    if out_dir is not None and not out_dir.is_dir():
        raise InputError(f"--out-dir {out_dir} is not a folder: create it first")
    names: dict[Path, Path] = {}
    for image in images:
        folder = out_dir if out_dir is not None else image.parent
        out = folder / f"{image.stem}.forward.npy"
        if out in names:
            raise InputError(f"{names[out]} and {image} would both write {out}: rename one, or "
                             "run them into different --out-dir folders")
        names[out] = image
    checked: set[Path] = set()
    given = {image.resolve() for image in images}
    for out in names:
        if out.resolve() in given:
            raise InputError(f"output {out} is also an input; inputs are never overwritten: "
                             "choose another --out-dir")
        if out.parent not in checked:             # the folder: exists, writable (once each)
            check_output(out, inputs, option="--out-dir", fmt="npy")
            checked.add(out.parent)
    return list(names)


def run_batch(spec: ProblemSpec, images: Sequence[Path], *, out_dir: Path | None,
              scheduler: str = "threads", workers: int | None = None,
              progress: Progress | None = None, memory_budget: int | None = None
              ) -> BatchResult:
    """The forward pass of spec's kernel and geometry on each image, y written to out_dir
    (default: beside each image) as NAME.forward.npy. scheduler: threads (a pool of `workers`,
    default one per core), processes, synchronous (one by one) or the address of a
    distributed scheduler (batches of files per task)."""
    outs = outputs(images, out_dir, [spec.kernel])
    # absolute paths: a cluster's workers run in other folders
    jobs = [(replace(spec, image=image.absolute()), out.absolute())
            for image, out in zip(images, outs, strict=True)]
    options = {} if memory_budget is None else {"memory_budget": memory_budget}
    start = time.perf_counter()
    if "://" in scheduler:
        results = _on_cluster(scheduler, jobs, options, progress)
    elif scheduler == "synchronous":
        results = []
        for k, job in enumerate(jobs, start=1):
            results.append(_one(job, options))
            if progress is not None:
                progress(k, len(jobs))
    else:
        pool: Executor
        count = workers or os.cpu_count() or 1
        if scheduler == "processes":
            pool = ProcessPoolExecutor(count)
        elif scheduler == "threads":
            pool = ThreadPoolExecutor(count)
        else:
            raise InputError(f"--scheduler must be threads, processes, synchronous or "
                             f"tcp://HOST:PORT, got {scheduler!r}")
        with pool:
            futures = {pool.submit(_one, job, options): k for k, job in enumerate(jobs)}
            ordered: list[Done | Failed | None] = [None] * len(jobs)
            for done, future in enumerate(as_completed(futures), start=1):
                ordered[futures[future]] = future.result()
                if progress is not None:
                    progress(done, len(jobs))
            results = [r for r in ordered if r is not None]
    seconds = time.perf_counter() - start
    return BatchResult([r for r in results if isinstance(r, Done)],
                       [r for r in results if isinstance(r, Failed)], seconds, scheduler)


def _one(job: tuple[ProblemSpec, Path], options: dict[str, Any]) -> Done | Failed:
    """One image; its failure is a Failed with one line, never an exception."""
    spec, out = job
    try:
        result = run_forward(spec, out=out, **options)
    except InputError as error:
        return Failed(spec.image, str(error).replace("\n", " "))
    except Exception as error:     # noqa: BLE001 - one bad file must not stop the batch
        return Failed(spec.image, f"internal error: {type(error).__name__}: {error}")
    return Done(spec.image, out, result.seconds)


def _several(jobs: list[tuple[ProblemSpec, Path]], options: dict[str, Any]
             ) -> list[Done | Failed]:
    """A batch of files, one task on a cluster worker."""
    return [_one(job, options) for job in jobs]


def _on_cluster(address: str, jobs: list[tuple[ProblemSpec, Path]], options: dict[str, Any],
                progress: Progress | None) -> list[Done | Failed]:
    """Batches of files as tasks on a distributed cluster (its workers read and write the
    same paths: a shared file system)."""
    from distributed import as_completed as finished

    from .schedulers import connect

    scheduler = connect(address)
    try:
        client = scheduler.client
        workers = max(1, sum(client.nthreads().values()))
        size = max(1, len(jobs) // (4 * workers))
        batches = [jobs[k: k + size] for k in range(0, len(jobs), size)]
        futures = client.map(_several, batches, options=options, pure=False)
        done = 0
        with client.as_current():
            for future in finished(futures):
                done += len(future.result())
                if progress is not None:
                    progress(done, len(jobs))
        return [r for batch in client.gather(futures) for r in batch]
    finally:
        scheduler.close()
