"""Answer extraction and equivalence (pure Python; no Ray, torch or vLLM imports)."""
from mathray.grading.extract import last_boxed

__all__ = ["last_boxed"]
