"""Where the units of a corpus study (analysis.heads) run: in this process, in a pool of local processes, or as
Ray tasks. Every executor runs the same function, analysis.heads.run_job, on the same jobs and hands back the
results in job order, with a progress bar (and its ETA) on stderr as units finish.

Ray (the `scale` extra) is for models whose L × H test-set decodes outgrow one machine: `--ray ADDRESS` joins a
running cluster (`ray start --head` on one node, `ray start --address=…` on the others), `--ray local` starts one
on this machine for the run. Ray puts the driver's working directory on its workers' paths and each worker loads
the model from the path the driver gives, so every node needs the same checkout and the model at the same path
(a shared filesystem, or a copy on each node).
"""

from __future__ import annotations

import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context

from analysis.heads import Job, run_job

STARTS = 3  # tries at starting a local Ray


def _progress(total: int, what: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=what, unit="unit", file=sys.stderr, dynamic_ncols=True, smoothing=0.05)


class InProcess:
    """Every unit in this process, one after another."""

    def __enter__(self) -> InProcess:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def __call__(self, jobs: list[Job], what: str) -> list[dict]:
        results = []
        with _progress(len(jobs), what) as bar:
            for job in jobs:
                results.append(run_job(job))
                bar.update()
        return results


class ProcessPool:
    """`workers` local processes (spawned: each loads the model once), one unit each at a time."""

    def __init__(self, workers: int):
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> ProcessPool:
        self._pool = ProcessPoolExecutor(self.workers, mp_context=get_context("spawn"))
        return self

    def __exit__(self, *exc) -> None:
        self._pool.shutdown(cancel_futures=True)

    def __call__(self, jobs: list[Job], what: str) -> list[dict]:
        futures = {self._pool.submit(run_job, job): index for index, job in enumerate(jobs)}
        results: list[dict | None] = [None] * len(jobs)
        with _progress(len(jobs), what) as bar:
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                bar.update()
        return results


class RayCluster:
    """Units as Ray tasks of one CPU each, on the cluster at `address`, or on one started here ("local") with
    `workers` CPUs."""

    def __init__(self, address: str, workers: int):
        self.address = address
        self.workers = workers
        self._ray = None

    def __enter__(self) -> RayCluster:
        try:
            import ray
        except ImportError as error:
            raise RuntimeError("--ray needs Ray: pip install 'attnscope[scale]'") from error
        self._ray = ray
        options = dict(include_dashboard=False, configure_logging=False, log_to_driver=False)
        if self.address == "local":
            # Small objects only travel (a shard's lines, its hypotheses and sums): the store need not take 30% of RAM.
            local = dict(num_cpus=self.workers, object_store_memory=200 * 1024 * 1024, **options)
            for attempt in range(STARTS):
                try:
                    ray.init(**local)
                    break
                except Exception as error:  # Ray waits a fixed 30 s for its raylet: a busy machine gets more goes
                    if "timed out during startup" not in str(error) or attempt == STARTS - 1:
                        raise
                    ray.shutdown()
        else:
            ray.init(address=self.address, **options)
        return self

    def __exit__(self, *exc) -> None:
        self._ray.shutdown()

    def __call__(self, jobs: list[Job], what: str) -> list[dict]:
        ray = self._ray
        task = ray.remote(num_cpus=1)(run_job)
        pending = {task.remote(job): index for index, job in enumerate(jobs)}
        results: list[dict | None] = [None] * len(jobs)
        with _progress(len(jobs), what) as bar:
            waiting = list(pending)
            while waiting:
                done, waiting = ray.wait(waiting, num_returns=1)
                results[pending[done[0]]] = ray.get(done[0])
                bar.update()
        return results


def executor(ray_address: str | None, workers: int) -> InProcess | ProcessPool | RayCluster:
    """Ray when an address (or "local") is given; else a pool of `workers` processes, or this one for 1."""
    if ray_address:
        return RayCluster(ray_address, workers)
    return ProcessPool(workers) if workers > 1 else InProcess()
