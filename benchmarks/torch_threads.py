"""torch threads for the pose encoder's training steps: 1 thread vs all cores, interleaved, on this machine as it is.

    python benchmarks/torch_threads.py [--repeats 5] [--steps 5]
    python benchmarks/torch_threads.py --pair [--lead 20] [--repeats 3] [--steps 5]

Times ``--steps`` training steps of the pose encoder (batch 64, a 13-joint layout with bones, 64 frames: Penn
Action's input) per measurement, alternating 1 thread and ``available_cores()`` threads so both see the same
machine load, and prints the median wall and CPU seconds per step of each, their ratio, the load average, and what
``threads=0`` (:func:`dance.threads.auto_threads`) would pick now. Run it on an idle machine and on a busy one:
the point of the default is the busy case, where extra threads wait on cores other processes hold.

``--pair``: two runs started together. Two processes start at once; each notes what the rule before session 21
would give it (the cores minus the 1-minute load average, read once when the process starts), works ``--lead``
seconds on one core (the run's earlier stages), then asks :func:`~dance.threads.auto_threads` (measured when the
stage starts, its own work left out). Both then time their training steps together, alternating: ``--epochs``
epochs of ``--steps`` steps both with the old rule's counts, then as many with the new rule's (re-counted after
each epoch, :class:`~dance.threads.Rebalance`), ``--repeats`` times. Prints each process's counts (the new rule's
per epoch) and the median wall and CPU seconds per step under each rule. On an idle 2-core machine the old rule
gives both processes 2 threads.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time

import numpy as np
import torch

from dance.encoders.pose_encoder import PoseEncoder
from dance.motion.poses import PoseSequence
from dance.motion.skeletons import PENN_13
from dance.threads import Rebalance, auto_threads, available_cores, free_cores


def steps(encoder: PoseEncoder, xb: torch.Tensor, yb: torch.Tensor, n: int) -> tuple[float, float]:
    opt = torch.optim.AdamW(encoder.net.parameters(), lr=1e-3)
    encoder.net.train()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        loss = torch.nn.functional.cross_entropy(encoder.net(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (time.perf_counter() - wall) / n, (time.process_time() - cpu) / n


def batch() -> tuple[PoseEncoder, torch.Tensor, torch.Tensor]:
    """A pose encoder and one training batch of Penn Action's shape (random poses)."""
    rng = np.random.default_rng(0)
    encoder = PoseEncoder(PENN_13.joints, 15, edges=PENN_13.edges)
    seqs = [PoseSequence(rng.normal(100, 30, (90, 13, 2)).astype(np.float32), np.ones((90, 13), np.float32))
            for _ in range(64)]
    xb = torch.from_numpy(np.stack([encoder._augment(s, rng) for s in seqs]))
    return encoder, xb, torch.from_numpy(rng.integers(0, 15, 64))


def one_of_a_pair(lead: float, repeats: int, n_steps: int, epochs: int, barrier, results) -> None:  # noqa: ANN001
    """One of ``--pair``'s processes (see the module's docstring)."""
    old = free_cores(available_cores(), os.getloadavg()[0])  # the rule before session 21, at the process start
    torch.set_num_threads(1)
    encoder, xb, yb = batch()
    end = time.monotonic() + lead
    while time.monotonic() < end:  # the run's earlier stages, on one core
        steps(encoder, xb, yb, 1)
    new = auto_threads()
    times: dict[str, list[tuple[float, float]]] = {"old": [], "new": []}
    counts: list[int] = []
    for _ in range(repeats):
        barrier.wait()
        torch.set_num_threads(old)
        for _ in range(epochs):
            times["old"].append(steps(encoder, xb, yb, n_steps))
        barrier.wait()
        torch.set_num_threads(new)
        rebalance = Rebalance(0)
        for _ in range(epochs):
            times["new"].append(steps(encoder, xb, yb, n_steps))
            counts.append(torch.get_num_threads())
            rebalance.step()
        new = torch.get_num_threads()
    results.put({"old": old, "new": counts, "times": times})


def pair(args: argparse.Namespace) -> None:
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=one_of_a_pair,
                         args=(args.lead, args.repeats, args.steps, args.epochs, barrier, results))
             for _ in range(2)]
    print(f"cores {available_cores()}, load average {os.getloadavg()[0]:.2f} at the start; two processes, "
          f"{args.lead:g} s on one core each, then {args.repeats} x {args.epochs} epochs of {args.steps} steps per "
          "rule, both together")
    for p in procs:
        p.start()
    out = [results.get() for _ in procs]
    for p in procs:
        p.join()
    for rule, what in (("old", "cores minus the load average at the process start"),
                       ("new", "free cores measured when the stage starts, re-counted each epoch")):
        wall = statistics.median(w for o in out for w, _ in o["times"][rule])
        cpu = statistics.median(c for o in out for _, c in o["times"][rule])
        used = " and ".join(str(o[rule]) if rule == "old" else "/".join(map(str, o[rule])) for o in out)
        print(f"{rule} rule ({what}): threads {used}; median {wall:.3f} s/step "
              f"wall, {cpu:.3f} CPU-s/step")
    ratio = (statistics.median(w for o in out for w, _ in o["times"]["old"])
             / statistics.median(w for o in out for w, _ in o["times"]["new"]))
    print(f"wall time per step, old rule / new rule: {ratio:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--pair", action="store_true", help="two runs started together (see above)")
    ap.add_argument("--lead", type=float, default=20.0, help="--pair: seconds on one core before the training")
    ap.add_argument("--epochs", type=int, default=4, help="--pair: epochs (of --steps steps) per rule and repeat")
    args = ap.parse_args()
    if args.pair:
        pair(args)
        return
    encoder, xb, yb = batch()
    cores = available_cores()
    counts = sorted({1, cores})
    times: dict[int, list[tuple[float, float]]] = {n: [] for n in counts}
    steps(encoder, xb, yb, 1)  # warm-up
    for _ in range(args.repeats):
        for n in counts:
            torch.set_num_threads(n)
            times[n].append(steps(encoder, xb, yb, args.steps))
    print(f"cores {cores}, load average {os.getloadavg()[0]:.2f}, threads=0 picks {auto_threads()}")
    print(f"{'threads':>8s}{'wall median':>13s}{'wall mean':>11s}{'cpu median':>12s}   (s/step over {args.repeats} x "
          f"{args.steps} steps; then every wall time)")
    med = {n: statistics.median(w for w, _ in times[n]) for n in counts}
    mean = {n: statistics.mean(w for w, _ in times[n]) for n in counts}
    for n in counts:
        print(f"{n:>8d}{med[n]:>13.3f}{mean[n]:>11.3f}{statistics.median(c for _, c in times[n]):>12.3f}   "
              + " ".join(f"{w:.2f}" for w, _ in times[n]))
    if len(counts) > 1:
        print(f"wall time of {cores} threads / 1 thread: median {med[cores] / med[1]:.2f}, mean "
              f"{mean[cores] / mean[1]:.2f} (the mean is what a long training run pays)")


if __name__ == "__main__":
    main()
