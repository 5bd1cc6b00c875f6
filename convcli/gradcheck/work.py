"""The progress of a check in units of real work (multiply-adds, roughly), so that a bar over
a large image moves with the time spent: the whole-image passes (forward, backward, the routes
check) weigh what they cost, and each checked coordinate what its differences cost."""

from __future__ import annotations

from collections.abc import Callable

from .data import CaseData


class Work:
    """The total over every planned configuration, and the work done so far."""

    def __init__(self, progress: Callable[[int, int], None] | None) -> None:
        self.progress = progress
        self.total = 0
        self.done = 0

    def plan(self, data: CaseData, samples: int | None, *, own: bool, forward: bool) -> Plan:
        """Add one configuration's work to the total; its Plan reports its steps."""
        plan = Plan(self, data, samples, own=own, forward=forward)
        self.total += sum(plan.cost.values())
        return plan

    def add(self, units: int) -> None:
        self.done = min(self.total, self.done + units)
        if self.progress is not None:
            self.progress(self.done, self.total)


class Plan:
    """One configuration's steps and their costs: forward, backward, one per coordinate of
    grad_input, grad_weight and grad_bias, and routes."""

    def __init__(self, work: Work, data: CaseData, samples: int | None, *, own: bool,
                 forward: bool) -> None:
        self.work = work
        n, o, oh, ow = data.g.shape
        taps = data.w.shape[2] * data.w.shape[3]
        kg = data.w[0].size                       # multiply-adds per output pixel and channel
        pixels = n * oh * ow
        products = pixels * o * kg                # one conv2d's multiply-adds
        counts = {"grad_input": data.x.size, "grad_weight": data.w.size,
                  "grad_bias": 0 if data.b is None else data.b.size}
        if samples is not None:
            counts = {k: min(v, samples) for k, v in counts.items()}
        # Measured on 4000² and 512² images (one and three channels): the backward costs about
        # one conv2d, and so does the routes check; a weight coordinate's differences cost
        # pixels·taps·(0.3 + 1/k) with k coordinates sharing one pass over x's columns.
        per_pass = {"grad_weight": min(taps, max(1, counts["grad_weight"] // data.w.shape[1])),
                    "grad_bias": max(1, counts["grad_bias"] // data.groups)}
        self.each = {"grad_input": 2 * taps * o * kg // data.groups + 1,
                     "grad_weight": int(pixels * taps * (0.3 + 1 / per_pass["grad_weight"])),
                     "grad_bias": int(pixels * kg * (0.3 + 1 / per_pass["grad_bias"]))}
        self.cost = {"forward": products * (2 if forward else 1), "backward": products,
                     "routes": products if own else 0}
        self.cost |= {k: counts[k] * self.each[k] for k in counts}
        self.spent = 0

    def advance(self, step: str, count: int = 1) -> None:
        """Step done (for a tensor: count more coordinates), never past this plan's total."""
        units = self.each[step] * count if step in self.each else self.cost[step]
        units = min(units, sum(self.cost.values()) - self.spent)
        self.spent += units
        self.work.add(units)

    def finish(self) -> None:
        """Whatever of this configuration's total is left (its backward failed, was skipped, or
        fewer coordinates were checked than planned)."""
        self.work.add(sum(self.cost.values()) - self.spent)
        self.spent = sum(self.cost.values())
