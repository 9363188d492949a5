"""Training on Ray Train: SSFT, the Liu et al. verifier (cls-xent / cls-margin), PRM, sequential multi-task.

``losses`` (pure tensors) and ``data`` (pure token ids) are importable without Ray; ``objectives`` turns a
micro-batch into a loss through ``mathray.core.readout``; ``loop`` is the worker loop (``train_func``); ``job``
the ``TorchTrainer`` driver. ``config.TrainJobConfig`` configures all of it.
"""
