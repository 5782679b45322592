"""A training-loop stand-in for tests/test_preemption.py: steps until `StopAtSignal` says stop.

    python tests/preemption_worker.py COORDINATOR NUM_PROCESSES PROCESS_ID

With NUM_PROCESSES > 1 it joins a `jax.distributed` job first. Process p sleeps 10 ms x (p + 1)
per step, so the processes are at different steps when a signal arrives. Prints
``step N`` after each step and ``STOP N`` at the step where it stops.
"""

import sys
import time

import jax


def main(coordinator: str, num_processes: int, process_id: int) -> None:
  if num_processes > 1:
    jax.distributed.initialize(coordinator, num_processes, process_id)
  from mnv2_jax import preemption  # pylint: disable=g-import-not-at-top
  with preemption.StopAtSignal() as stop_signal:
    print(f"coordinated {stop_signal.coordinated}", flush=True)
    for step in range(1, 3000):
      time.sleep(0.01 * (1 + process_id))
      print(f"step {step}", flush=True)
      if stop_signal.requested(step):
        print(f"STOP {step}", flush=True)
        break
  if num_processes > 1:
    jax.distributed.shutdown()


if __name__ == "__main__":
  main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
