"""mathray: distributed sampling, labeling, verifier/PRM training and re-ranking for math LLMs on Ray."""

__version__ = "0.1.0"
