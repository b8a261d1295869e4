"""Turn the spec's optimizer section into an Optax transformation."""

from __future__ import annotations

import optax

from netlens.storage.spec import OptimizerSpec


def make_schedule(opt: OptimizerSpec, steps_per_epoch: int, epochs: int) -> optax.Schedule:
    total = max(1, steps_per_epoch * epochs)
    lr = opt.learning_rate
    if opt.schedule == "constant":
        return optax.constant_schedule(lr)
    if opt.schedule == "cosine":
        return optax.cosine_decay_schedule(lr, decay_steps=total)
    if opt.schedule == "exponential":
        return optax.exponential_decay(lr, transition_steps=total, decay_rate=opt.decay_rate)
    if opt.schedule == "warmup_cosine":
        warmup = min(total - 1, opt.warmup_epochs * steps_per_epoch)
        return optax.warmup_cosine_decay_schedule(0.0, lr, warmup_steps=warmup, decay_steps=total)
    raise ValueError(f"Unsupported schedule: {opt.schedule!r}")


def make_optimizer(
    opt: OptimizerSpec, steps_per_epoch: int, epochs: int
) -> optax.GradientTransformation:
    lr = make_schedule(opt, steps_per_epoch, epochs)
    if opt.name == "adamw":
        return optax.adamw(lr, weight_decay=opt.weight_decay)
    if opt.name == "sgd":
        base = optax.sgd(lr)
    elif opt.name == "momentum":
        base = optax.sgd(lr, momentum=opt.momentum)
    elif opt.name == "adam":
        base = optax.adam(lr)
    elif opt.name == "rmsprop":
        base = optax.rmsprop(lr)
    else:
        raise ValueError(f"Unsupported optimizer: {opt.name!r}")
    if opt.weight_decay:
        # L2 decay added to the gradient before the optimizer (adamw decouples it instead).
        return optax.chain(optax.add_decayed_weights(opt.weight_decay), base)
    return base
