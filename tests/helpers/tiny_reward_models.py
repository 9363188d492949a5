"""Tiny random reward models in published layouts, built locally (no hub): weights as their checkpoints name
them, so vLLM and transformers load them as they would the real ones."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import AutoTokenizer, Qwen2Config, Qwen2Model

from mathray.jobs.tiny_model import build_tiny_model


def build_separator_prm(out: Path, seed: int = 0, separator: str = "<extra_0>") -> Path:
    """A Qwen2ForProcessRewardModel (Qwen2.5-Math-PRM's layout: ``model.*`` body, ``score.0``/``score.2`` head of
    Linear-ReLU-Linear to 2 classes) on the tiny Qwen2, its tokenizer with ``separator`` added as a token."""
    base = build_tiny_model(out.parent / f"{out.name}-base", seed=seed)
    tok = AutoTokenizer.from_pretrained(base)
    tok.add_special_tokens({"additional_special_tokens": [separator]})
    cfg = json.loads(Path(base, "config.json").read_text())
    cfg.update(architectures=["Qwen2ForProcessRewardModel"], num_labels=2, vocab_size=64 * (len(tok) // 64 + 1))
    torch.manual_seed(seed)
    body = Qwen2Model(Qwen2Config(**{k: v for k, v in cfg.items() if k != "architectures"}))
    h = cfg["hidden_size"]
    weights = {f"model.{k}": v.contiguous() for k, v in body.state_dict().items()}
    weights.update({"score.0.weight": torch.randn(h, h) * 0.2, "score.0.bias": torch.randn(h) * 0.2,
                    "score.2.weight": torch.randn(2, h) * 0.2, "score.2.bias": torch.randn(2) * 0.2})
    out.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(out / "model.safetensors"))
    (out / "config.json").write_text(json.dumps(cfg, indent=1))
    tok.save_pretrained(out)
    return out


def load_separator_prm(model_dir: Path):
    """A plain transformers + torch forward of a model in that layout, loaded once: ``forward(ids)`` gives the
    head's class probabilities ``[T, 2]`` at every position."""
    from safetensors.torch import load_file

    cfg = json.loads(Path(model_dir, "config.json").read_text())
    weights = load_file(str(Path(model_dir, "model.safetensors")))
    body = Qwen2Model(Qwen2Config(**{k: v for k, v in cfg.items() if k != "architectures"}))
    body.load_state_dict({k.removeprefix("model."): v for k, v in weights.items() if k.startswith("model.")})
    body.eval()

    def forward(ids: list[int]) -> torch.Tensor:
        with torch.inference_mode():
            hidden = body(input_ids=torch.tensor([ids])).last_hidden_state[0]
            x = torch.relu(hidden @ weights["score.0.weight"].T + weights["score.0.bias"])
            return torch.softmax(x @ weights["score.2.weight"].T + weights["score.2.bias"], dim=-1)
    return forward


def separator_prm_forward(model_dir: Path, ids: list[int]) -> torch.Tensor:
    """The head's class probabilities ``[T, 2]`` at every position by a plain transformers + torch forward."""
    return load_separator_prm(model_dir)(ids)
