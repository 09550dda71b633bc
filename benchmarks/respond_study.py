"""Does choosing a code choose the response? `demvae respond`'s promise, measured on a dialog run (issue 24).

    python benchmarks/respond_study.py RUN_DIR [--contexts 50] [--top 3] [--z mean|sample] [--json OUT.json]

For each of the first ``--contexts`` test contexts, the policy's ``--top`` most probable joint codes each write
one response (as ``demvae respond`` does: greedy decoding, z = the component's mean by default). Printed:

* the share of contexts whose ``--top`` responses are all different;
* code recovery: the share of responses that stage 1 re-encodes (argmax q(c|r)) to the code they were written
  for, jointly and per variable; the policy's own top code is also reported apart (it is the code the decoder
  saw most in training, so recovery is easiest there);
* a few contexts with their responses, to read.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from demvae.data.batching import EncodedSplit
from demvae.data.types import Example
from demvae.evaluation.generation import contexts
from demvae.models import top_codes
from demvae.training import load_run
from demvae.training.run_folder import run_data


@torch.no_grad()
def study(run_dir: Path, n_contexts: int, top: int, z_choice: str, seed: int, data_dir: str | None) -> dict:
    run = load_run(run_dir)
    model, vocab = run.model, run.vocab
    split = run_data(run, data_dir=data_dir).splits["test"]
    n_contexts = min(n_contexts, len(split))
    torch.manual_seed(seed)
    t = time.perf_counter()
    # one batch for every context's policy, one for every (context, code) response
    log_policy = model.policy_probs(split.batch(list(range(n_contexts))).to(model.device)).log()  # [N, M, K]
    chosen = [top_codes(lp, top) for lp in log_policy]  # per context: codes [n, M], probabilities [n]
    index = [i for i, (codes, _) in enumerate(chosen) for _ in range(codes.shape[0])]
    out = model.respond(split.batch(index).to(model.device), codes=torch.cat([c for c, _ in chosen]), z_choice=z_choice)
    responses = iter(" ".join(vocab.decode(ids)) for ids in out.ids.cpu().tolist())
    rows = [{"context": i, "codes": codes.cpu().tolist(), "probs": probs.cpu().tolist(),
             "responses": [next(responses) for _ in range(codes.shape[0])]} for i, (codes, probs) in enumerate(chosen)]
    seconds = time.perf_counter() - t
    # re-encode every response with the frozen stage 1 (the sentence VAE the codes come from)
    sentences = [Example(tuple(r.split())) for row in rows for r in row["responses"]]
    encoded = EncodedSplit.from_examples(sentences, vocab, run.config.data.max_len)
    q = model.stage1.code_probs(encoded.full().to(model.device))  # [N·top, M, K]
    asked = torch.tensor([c for row in rows for c in row["codes"]], device=q.device)  # [N·top, M]
    hit = q.argmax(-1) == asked  # [N·top, M]
    first = torch.tensor([j == 0 for row in rows for j in range(len(row["codes"]))], device=q.device)
    distinct = [len(set(row["responses"])) == len(row["responses"]) for row in rows]
    turns = contexts(split, vocab)
    return {
        "run": str(run_dir), "contexts": n_contexts, "top": top, "z": z_choice,
        "all_distinct": sum(distinct) / n_contexts,
        "recovery_joint": float(hit.all(-1).float().mean()),
        "recovery_per_variable": [float(v) for v in hit.float().mean(0)],
        "recovery_joint_top1": float(hit[first].all(-1).float().mean()),
        "recovery_joint_others": float(hit[~first].all(-1).float().mean()) if (~first).any() else float("nan"),
        "seconds_per_1000_responses": 1000 * seconds / len(sentences),
        "examples": [{**row, "turns": [" ".join(tn) for tn in turns[row["context"]]]} for row in rows[:3]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--contexts", type=int, default=50)
    parser.add_argument("--top", type=int, default=3)
    parser.add_argument("--z", choices=("mean", "sample"), default="mean")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = [study(r, args.contexts, args.top, args.z, args.seed, args.data_dir) for r in args.runs]
    print(f"| run | contexts | top-{args.top} all distinct | recovery (joint) | top-1 code | other codes | "
          "per variable | s / 1,000 responses |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        per = ", ".join(f"{v:.2f}" for v in r["recovery_per_variable"])
        print(f"| {r['run']} | {r['contexts']} | {r['all_distinct']:.2f} | {r['recovery_joint']:.2f} | "
              f"{r['recovery_joint_top1']:.2f} | {r['recovery_joint_others']:.2f} | {per} | "
              f"{r['seconds_per_1000_responses']:.1f} |")
    for r in results:
        for ex in r["examples"]:
            print("\ncontext: " + " / ".join(ex["turns"][-2:]))
            for code, p, resp in zip(ex["codes"], ex["probs"], ex["responses"]):
                print(f"  {'-'.join(map(str, code))}  p={p:.3f}  {resp}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
