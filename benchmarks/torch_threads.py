"""torch threads for the pose encoder's training steps: 1 thread vs all cores, interleaved, on this machine as it is.

    python benchmarks/torch_threads.py [--repeats 5] [--steps 5]

Times ``--steps`` training steps of the pose encoder (batch 64, a 13-joint layout with bones, 64 frames: Penn
Action's input) per measurement, alternating 1 thread and ``available_cores()`` threads so both see the same
machine load, and prints the median wall and CPU seconds per step of each, their ratio, the load average, and what
``threads=0`` (:func:`dance.threads.auto_threads`) would pick now. Run it on an idle machine and on a busy one:
the point of the default is the busy case, where extra threads wait on cores other processes hold.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

from dance.encoders.pose_encoder import PoseEncoder
from dance.motion.poses import PoseSequence
from dance.motion.skeletons import PENN_13
from dance.threads import auto_threads, available_cores


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    encoder = PoseEncoder(PENN_13.joints, 15, edges=PENN_13.edges)
    seqs = [PoseSequence(rng.normal(100, 30, (90, 13, 2)).astype(np.float32), np.ones((90, 13), np.float32))
            for _ in range(64)]
    xb = torch.from_numpy(np.stack([encoder._augment(s, rng) for s in seqs]))
    yb = torch.from_numpy(rng.integers(0, 15, 64))
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
