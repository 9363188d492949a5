"""The verifier label tokens, the PRM step tag and its label tokens, resolved in ONE place for training and
scoring.

The strings live in ``prompts`` (`` correct``/`` incorrect``, the step tag `` ки``, `` +``/`` -``). Their token
ids depend on the model's tokenizer, and a real tokenizer may split a string into several tokens. Policy
(``LabelSettings.multi_token``), applied identically by the training job and the scorer:

- ``subtoken`` (default, no vocabulary change): a pair of label strings is represented by the first tokens
  at which their encodings differ; the tokens before that (a shared prefix, e.g. the leading-space token
  when neither word is in the vocabulary) are appended to the input, and the score is read after them.
  p(label A) / (p(A) + p(B)) then starts with exactly that factor: the shared prefix has the same
  probability under both labels. A step tag that is several tokens is inserted as all its tokens after each
  step and read at its LAST token, so the model sees the tag text exactly as the tokenizer writes it. The
  PRM labels' shared prefix (if any) is part of the inserted tag (``LabelTokens.step_tag``).
- ``add_tokens``: every multi-token string is added to the tokenizer as a special token and the input
  embeddings are resized when the new ids exceed the embedding rows (Qwen2.5 pads its embedding to 151,936
  rows, more than its tokenizer's ~151,665 entries, so new ids usually fit without resizing). The export then
  carries the extended tokenizer, and ``mathray_labels.json`` records what was added.

The training job writes the resolved ids to ``mathray_labels.json`` in every model export; the scorer reads
that file (so overrides made for training are the ones scored) and falls back to resolving the default
strings with ``subtoken`` for models that mathray did not train.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from mathray.config import StrictModel
from mathray.core.prompts import PRM_LABELS, STEP_TAG, VERIFIER_LABELS

LABELS_FILE = "mathray_labels.json"


class LabelSettings(StrictModel):
    verifier: tuple[str, str] = VERIFIER_LABELS   # (positive, negative)
    step_tag: str = STEP_TAG
    prm: tuple[str, str] = PRM_LABELS             # (good step, bad step)
    multi_token: Literal["subtoken", "add_tokens"] = "subtoken"


@dataclass(frozen=True)
class LabelTokens:
    """Resolved ids: ``verifier``/``prm`` are (positive, negative) ids read from the logits; ``step_tag`` the
    ids inserted after every step (scores are read at the last of them); ``verifier_suffix`` the ids appended
    to the verifier input (the labels' shared prefix; usually none)."""

    verifier: tuple[int, int]
    step_tag: tuple[int, ...]
    prm: tuple[int, int]
    verifier_suffix: tuple[int, ...] = ()
    settings: dict = field(default_factory=dict)
    added_tokens: tuple[str, ...] = ()
    embedding_rows: tuple[int, int] | None = None   # (before, after) when the embeddings were resized

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "LabelTokens":
        return cls(verifier=tuple(data["verifier"]), step_tag=tuple(data["step_tag"]), prm=tuple(data["prm"]),
                   verifier_suffix=tuple(data.get("verifier_suffix", ())),
                   settings=data.get("settings", {}), added_tokens=tuple(data.get("added_tokens", ())),
                   embedding_rows=tuple(data["embedding_rows"]) if data.get("embedding_rows") else None)


def _encode(tokenizer, text: str) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False))


def _pair(tokenizer, pair: tuple[str, str], what: str) -> tuple[tuple[int, int], tuple[int, ...]]:
    """((first differing id of each label), shared prefix ids)."""
    a, b = _encode(tokenizer, pair[0]), _encode(tokenizer, pair[1])
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    if n == len(a) or n == len(b):
        raise ValueError(f"{what} labels {pair!r}: one encodes as a prefix of the other in this tokenizer "
                         f"({a} / {b}), so no token tells them apart; use other label strings")
    return (a[n], b[n]), tuple(a[:n])


def resolve_labels(tokenizer, settings: LabelSettings | None = None, model=None) -> LabelTokens:
    """Resolve ``settings`` for ``tokenizer``. With ``add_tokens``, multi-token strings are added to the
    tokenizer (in place) and ``model``'s embeddings resized if needed; ``model`` may be None only when no
    string needs adding."""
    s = settings or LabelSettings()
    strings = [*s.verifier, s.step_tag, *s.prm]
    added: list[str] = []
    rows = None
    if s.multi_token == "add_tokens":
        from tokenizers import AddedToken

        added = [t for t in dict.fromkeys(strings) if len(_encode(tokenizer, t)) != 1]
        if added:
            tokenizer.add_tokens([AddedToken(t, normalized=False, special=True) for t in added],
                                 special_tokens=True)
            if model is None:
                raise ValueError(f"adding label tokens {added} needs the model (its embeddings may grow)")
            before = model.get_input_embeddings().weight.shape[0]
            if len(tokenizer) > before:
                model.resize_token_embeddings(len(tokenizer), mean_resizing=True)
                rows = (before, model.get_input_embeddings().weight.shape[0])
    tag = tuple(_encode(tokenizer, s.step_tag))
    if not tag:
        raise ValueError(f"step tag {s.step_tag!r} encodes to no token")
    verifier, verifier_suffix = _pair(tokenizer, s.verifier, "verifier")
    prm, prm_prefix = _pair(tokenizer, s.prm, "PRM")
    return LabelTokens(verifier=verifier, step_tag=tag + prm_prefix, prm=prm, verifier_suffix=verifier_suffix,
                       settings=s.model_dump(mode="json"), added_tokens=tuple(added), embedding_rows=rows)


def save_labels(model_dir: str | Path, tokens: LabelTokens) -> None:
    Path(model_dir, LABELS_FILE).write_text(json.dumps(tokens.to_json(), indent=1))


def load_labels(model_dir: str | Path, tokenizer) -> LabelTokens:
    """The ids a model was trained with (``mathray_labels.json``), else the defaults resolved for its tokenizer
    with ``subtoken`` (no vocabulary change at scoring time)."""
    p = Path(model_dir, LABELS_FILE)
    if p.is_file():
        return LabelTokens.from_json(json.loads(p.read_text()))
    return resolve_labels(tokenizer, LabelSettings())
