"""Training on Ray Train with transformers' ``Trainer``: SSFT (TRL ``SFTTrainer``), the Liu et al. verifier
(cls-xent / cls-margin), PRM (hard / soft), ORM, and the sequential multi-task recipe.

``data`` (pure token ids) and ``objectives`` (a micro-batch -> a loss, through ``core.losses`` and
``core.readout``) are mathray's own; ``trainers`` plugs each objective into a ``Trainer`` subclass;
``callbacks`` builds ``TrainingArguments`` and the Ray Train reporting; ``worker`` runs the phases in each
Ray Train worker; ``job`` is the ``TorchTrainer`` driver; ``plan`` sizes a recipe without a GPU.
``config.TrainJobConfig`` configures all of it.
"""
