"""The learning rate RETURNN schedules per epoch, before LR control reacts to scores.

Mirrors tf/engine.py:Engine.init_train_epoch and learning_rate_control.py: `#config` learning rates
overwrite the stored LR of their epoch; `learning_rates` (list or dict) fill epochs without one; with
pretrain and without `use_learning_rate_control_always`, pretrain epochs use `pretrain_learning_rate`
and the first epoch after pretrain uses `learning_rate`; otherwise an epoch without a stored LR carries
the previous one forward (what "constant" control does and where newbob control starts from).
"""

from __future__ import annotations

from typing import Any


def explicit_learning_rates(config: Any) -> dict[int, float]:
    """`learning_rates` as {epoch: lr} (a list means epochs 1..N)."""
    value = config.typed_dict.get("learning_rates")
    if value is None and config.has("learning_rates"):
        value = config.float_list("learning_rates")
    if isinstance(value, str):
        value = eval(value)  # noqa: S307 - RETURNN itself evals this string (learning_rate_control.py)
    if isinstance(value, dict):
        return {int(k): float(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return {i + 1: float(v) for i, v in enumerate(value)}
    return {}


def lr_per_epoch(config: Any, num_epochs: int, num_pretrain: int | None,
                 config_lrs: list[float | None]) -> list[float]:
    """Scheduled LR for epochs 1..num_epochs; `config_lrs[i]` is the `#config` LR of epoch i+1."""
    learning_rate = config.float("learning_rate", 1.0)
    pretrain_lr = config.float("pretrain_learning_rate", learning_rate)
    always = config.bool("use_learning_rate_control_always", False)
    stored = explicit_learning_rates(config)
    result: list[float] = []
    for epoch in range(1, num_epochs + 1):
        config_lr = config_lrs[epoch - 1] if epoch <= len(config_lrs) else None
        if config_lr is not None:
            stored[epoch] = float(config_lr)
        if num_pretrain is not None and not always and epoch <= num_pretrain:
            lr = pretrain_lr
            stored.setdefault(epoch, lr)
        elif num_pretrain is not None and not always and epoch == num_pretrain + 1:
            lr = learning_rate
            stored.setdefault(epoch, lr)
        else:
            earlier = [e for e in stored if e < epoch]
            lr = stored.get(epoch, stored[max(earlier)] if earlier else learning_rate)
            stored[epoch] = lr
        result.append(lr)
    return result
