"""Peak resident memory of one verifier training step (forward + backward), each mode in a fresh process:
(what the readout path keeps: [B, distinct read positions, vocab] logits and the vocab x hidden weight
gradients; what the full path adds: [B, T, vocab] logits and their gradient, so the ratio shrinks with T)
``python peak_memory_probe.py MODEL_DIR MODE [MODE ...]`` (``readout`` | ``full``) prints
``PEAK_BYTES=<n> MODE=<mode> ...`` per mode.

The libraries are imported once; each mode then runs in a child forked from that process, which loads the
model and the batch itself, so no mode sees memory another one touched. The step runs
``objectives.verifier_xent_loss`` with the LM head at the read positions (``readout``) or on every position
(``full``: the whole ``[B, T, vocab]`` logits). Linux's peak-RSS counter (VmHWM) is reset just before the step
(``/proc/self/clear_refs``, value 5), so the number is the step's own high-water mark above the memory already
resident (model, tokenizer, inputs)."""
import os
import sys
import traceback

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2ForCausalLM  # noqa: F401 (imported once, here)

from mathray.core.label_tokens import resolve_labels
from mathray.core.toy import ToyTaskConfig, generate_problems
from mathray.jobs.training import data, objectives


def rss(field: str) -> int:
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def measure(model_dir: str, mode: str) -> None:
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    labels = resolve_labels(tok)
    rows = generate_problems(ToyTaskConfig(seed=3, num_train=4, num_test=0), "train")
    # 4 sequences of ~600 tokens (solutions repeated; max_len is 1024 in the recipes): full logits 4 x ~600 x
    # 151,936 fp32 (~1.4 GB)
    batch = [data.verifier_example(tok, r["problem"], "\n".join([r["reference_solution"]] * 8), i % 2 == 0, 1024,
                                   labels.verifier_suffix) for i, r in enumerate(rows)]
    for p in model.parameters():   # gradient buffers exist before the step, as after a first optimizer step
        p.grad = torch.zeros_like(p)
    base = rss("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    loss, _ = objectives.verifier_xent_loss(model, batch, labels.verifier, tok.pad_token_id, "cpu",
                                            full=(mode == "full"))
    loss.backward()
    print(f"PEAK_BYTES={rss('VmHWM') - base} MODE={mode} TOKENS={max(len(e['input_ids']) for e in batch)}x{len(batch)}",
          flush=True)


def main(model_dir: str, modes: list[str]) -> None:
    torch.set_num_threads(1)
    for mode in modes:
        pid = os.fork()
        if pid == 0:
            try:
                measure(model_dir, mode)
            except BaseException:
                traceback.print_exc()
                sys.stderr.flush()
                os._exit(1)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"the {mode} measurement failed (exit {os.waitstatus_to_exitcode(status)})")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
