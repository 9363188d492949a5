"""Training on Ray Train with transformers' ``Trainer``: SSFT (TRL ``SFTTrainer``), the Liu et al. verifier
(cls-xent / cls-margin), PRM (hard / soft), ORM, and the sequential multi-task recipe.

``tasks`` declares each training task once (``tasks/<task>.py``, one registry line in ``tasks/__init__.py``): its
config section, the data it reads, its phases, each phase's example builder, loss and eval scores, and its
memory terms. ``data`` (pure token ids) and ``objectives`` (a micro-batch -> a loss, through ``core.losses`` and
``core.readout``) are the pieces the declarations use; ``trainers`` runs a phase's loss in a ``Trainer``;
``callbacks`` builds ``TrainingArguments`` and the Ray Train reporting; ``worker`` runs the phases in each
Ray Train worker; ``job`` is the ``TorchTrainer`` driver; ``lineage`` the run identity both share; ``plan``
sizes a recipe without a GPU. ``config.TrainJobConfig`` configures all of it.
"""
