"""mathray: distributed sampling, labeling, verifier/PRM training and re-ranking for math LLMs on Ray.

Layers, each importing only from the ones above it:

- ``mathray.config``: typed configs (pydantic), YAML + ``key=value`` overrides, hashing, code version.
- ``mathray.grading``, ``mathray.core``: pure logic, no Ray (answer grading, steps, prompts, readout,
  losses, metrics, selectors, Math-Shepherd search, the toy task, row schemas).
- ``mathray.runtime``: storage URIs and committed shard sets, model exports, the resumable stage runner,
  vLLM engine pools, the common entry point.
- ``mathray.jobs``: one module per job (ingest, sampling, labeling, training, scoring, evaluation).
- ``mathray.pipeline``: the whole method as one graph of jobs under one run root.
"""

__version__ = "0.1.0"
