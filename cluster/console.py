"""A training job's console: the lines its rank-0 worker says on purpose, and nothing else.

The jobs run with `log_to_driver=False`, so what Ray's workers print on their own (Ray Train's
report and checkpoint lines, Ray Data's progress bars, JAX's and Gloo's start-up lines) stays in
the job's log files and on the dashboard. The one line an epoch that the train loop writes travels
to the driver through a Ray queue, and the driver prints it as it arrives: under `ray job submit`
that is the job's log, in a terminal the terminal.
"""

from __future__ import annotations

import logging
import sys
import threading


class Relay:
    """`with Relay() as relay:` -- pass `relay.queue` to the workers (as `cfg["console"]`); lines
    they `say()` are printed here, in order, until the block ends."""

    def __init__(self, out=None):
        from ray.util.queue import Queue

        self.out = out
        self.queue = Queue(actor_options={"num_cpus": 0})  # never waits for CPUs the workers hold
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, name="console-relay", daemon=True)

    def __enter__(self) -> "Relay":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._drain()
        try:
            self.queue.shutdown()
        except Exception:  # Ray already down: the queue's actor went with it
            pass

    def _print(self, line: str) -> None:
        print(line, file=self.out or sys.stdout, flush=True)

    def _pump(self) -> None:
        from ray.util.queue import Empty

        while not self._stop.is_set():
            try:
                self._print(self.queue.get(timeout=0.5))
            except Empty:
                continue
            except Exception:  # the queue's actor is gone (cluster shutting down): nothing more to say
                return

    def _drain(self) -> None:
        try:
            for line in self.queue.get_nowait_batch(self.queue.qsize()):
                self._print(line)
        except Exception:
            pass


def say(console, line: str) -> None:
    """From a worker: to the driver's console through its relay, else to this process's stdout
    (a Tune trial's log, or a test calling the loop directly)."""
    if console is not None:
        try:
            console.put(line, timeout=10)
            return
        except Exception:
            pass
    print(line, flush=True)


def quiet_ray_data() -> None:
    """No progress bars from Ray Data in this process, and its INFO lines (each dataset's execution
    plan and progress) to its log file only; its warnings still reach the console."""
    import ray.data  # configures the "ray.data" logger
    from ray._private.log import PlainRayHandler

    ray.data.DataContext.get_current().enable_progress_bars = False
    for handler in logging.getLogger("ray.data").handlers:
        if isinstance(handler, PlainRayHandler):
            handler.setLevel(logging.WARNING)
            handler.addFilter(lambda record: not record.getMessage().startswith("Progress bars disabled"))
