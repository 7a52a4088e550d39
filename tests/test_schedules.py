"""`make_scheduler`'s own LambdaLR schedules give, step for step, exactly the floats of transformers'
`get_{constant,linear,cosine}_schedule_with_warmup` (which they replace so a training stage need not import
transformers): the same learning rates, so the same weights, probabilities and metrics byte for byte."""

from __future__ import annotations

import pytest
import torch

from koemo.train.trainer import TrainConfig, make_scheduler

transformers = pytest.importorskip("transformers")

CASES = [  # (warmup_ratio, total steps, lr): no warm-up, warm-up over every step, fractions that round, one step
    (0.0, 40, 1e-3), (1.0, 12, 2e-5), (0.1, 37, 3e-4), (0.06, 250, 5e-5), (0.5, 9, 0.1), (0.3, 1, 1e-2),
    (0.25, 4, 1.0),
]


def reference(name: str, optimizer, warmup: int, total: int):
    if name == "cosine":
        return transformers.get_cosine_schedule_with_warmup(optimizer, warmup, total)
    if name == "linear":
        return transformers.get_linear_schedule_with_warmup(optimizer, warmup, total)
    return transformers.get_constant_schedule_with_warmup(optimizer, warmup)


def learning_rates(scheduler, optimizer, steps: int) -> list[float]:
    """The lr of every step (the initial one included), as the training loop steps the schedule."""
    rates = [optimizer.param_groups[0]["lr"]]
    for _ in range(steps):
        optimizer.step()
        scheduler.step()
        rates.append(optimizer.param_groups[0]["lr"])
    return rates


def optimizer_for(lr: float):
    return torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=lr)


@pytest.mark.parametrize("schedule", ["constant", "linear", "cosine"])
@pytest.mark.parametrize("warmup_ratio,total,lr", CASES)
def test_schedule_matches_transformers_exactly_at_every_step(schedule, warmup_ratio, total, lr):
    config = TrainConfig(epochs=1, batch_size=1, lr=lr, schedule=schedule, warmup_ratio=warmup_ratio)
    ours_opt, theirs_opt = optimizer_for(lr), optimizer_for(lr)
    ours = make_scheduler(ours_opt, config, total_steps=total)
    warmup = int(round(warmup_ratio * total))
    theirs = reference(schedule, theirs_opt, warmup, total)
    steps = total + 3  # past the end too: the linear/cosine floors
    assert learning_rates(ours, ours_opt, steps) == learning_rates(theirs, theirs_opt, steps)
    assert ours.state_dict() == theirs.state_dict()  # a checkpoint's scheduler state (resume) too


def test_cases_cover_no_warmup_and_all_warmup():
    warmups = {(int(round(r * t)), t) for r, t, _ in CASES}
    assert any(w == 0 for w, _ in warmups) and any(w == t for w, t in warmups)
