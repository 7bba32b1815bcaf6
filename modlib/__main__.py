"""The command line: ``python -m modlib reproduce {mnist,cifar,modadd,llm} [options]``.

Trains the baseline and the modular model of one of the paper's experiments, measures both and
writes the models, ``results.json`` and figures to ``--out``. Every option, and that ``--out`` is
a folder that can be written to, is checked before any training: a bad one exits with status 2
and one line on stderr. Under Accelerate
(``accelerate launch -m modlib reproduce llm``) the same command runs on several GPUs.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import get_args

from .core.stats import Interval
from .course.experiments import MODELS, Experiment, check_device, check_out, reproduce
from .training.profiles import ProfileName, profile

__all__ = ["main"]

_EPILOG = """\
Every seed (--seed, --seed + 1, ...) has its own data split, initialisation and batch order,
shared by its runs: a baseline (lam 0), the modular model (--lam) and, for mnist and cifar, a
sparse control (the same penalty on a mask of as many entries, scattered at random: as sparse
as the modular model, without modules).

results.json holds: experiment, profile, model and data (the model and data actually used),
tokenizer (llm: the model's own, name and vocab_size), k, lam, seed, n_seeds, seconds; "seeds":
one result per seed, each with "baseline", "modular" (and "sparse_control"): accuracy
(perplexity and loss for llm), clusterability (on the partition the training used),
clusterability_spectral (on the partition spectral co-clustering finds), per-layer values and,
for images, specialization beside its control and a label's circuit size by attribution
patching and by greedy pruning; "summary": each headline number's mean and 95 % interval over
the seeds, "finding" true when the interval excludes no effect; the first seed's results again
as "baseline", "modular" and "sparse_control"; "paper" the authors' numbers where the set-up
matches. Figures: weights_baseline.png, weights_modular.png, curves.png (and ablation.png). The
first seed's models (baseline.pt, modular.pt, sparse_control.pt) are written as soon as their
training ends, and results.json after every step.

examples:
  python -m modlib reproduce mnist --profile ci --out results/mnist
  python -m modlib reproduce mnist --model paper --k 4 --lam 20
  accelerate launch --multi_gpu --num_processes 4 -m modlib reproduce llm --profile paper
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage block, no traceback
        self.exit(2, f"modlib: error: {message} (see python -m modlib --help)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m modlib", description="Modular training of neural networks for "
                "interpretability: reproduce the paper's experiments.",
                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_EPILOG)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    r = sub.add_parser("reproduce", help="train a baseline and a modular model, measure both",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_EPILOG)
    r.add_argument("experiment", choices=list(get_args(Experiment)))
    r.add_argument("--profile", choices=list(get_args(ProfileName)), default=None,
                   help="sizes: ci (seconds), cpu (minutes on a laptop), gpu (a free Colab "
                        "T4: <= 20 minutes a notebook), paper (the paper's scale: an A100 or "
                        "several GPUs); default: $MODLIB_PROFILE, else gpu with CUDA, else cpu")
    r.add_argument("--k", type=int, default=4, help="clusters per layer (default 4)")
    r.add_argument("--lam", type=float, default=20.0, help="λ of the modular run (default 20)")
    r.add_argument("--seed", type=int, default=0, help="first random seed (default 0)")
    r.add_argument("--seeds", type=int, default=None,
                   help="how many seeds (default: the profile's; ci 2, cpu 3, gpu and paper 5)")
    r.add_argument("--model", choices=[m for ms in MODELS.values() for m in ms], default=None,
                   help="mnist: the course CNN (default) or the authors' MLP ('paper'); "
                        "llm: GPT-2, Pythia-70m ('pythia') or Pythia-14m (default: the "
                        "profile's, GPT-2 but Pythia-14m in the cpu profile)")
    r.add_argument("--out", default=None, help="folder for results.json and figures "
                                               "(default results/EXPERIMENT)")
    r.add_argument("--device", default=None, help="where to train, e.g. cpu or cuda (default: "
                   "cuda when available, else cpu; under accelerate launch, one GPU per process)")
    r.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m modlib``; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.k < 1:
        parser.error(f"--k must be >= 1, got {args.k}")
    if args.seeds is not None and args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    if not (math.isfinite(args.lam) and args.lam >= 0):
        parser.error(f"--lam must be a finite real >= 0, got {args.lam}")
    allowed = MODELS.get(args.experiment, ())
    if args.model is not None and args.model not in allowed:
        parser.error(f"--model {args.model} does not apply to {args.experiment}")
    out = args.out or f"results/{args.experiment}"
    try:  # before any training: the device, the profile ($MODLIB_PROFILE), a writable --out
        check_device(args.device)
        profile(args.profile)
        check_out(out)
    except (TypeError, ValueError) as e:
        parser.error(str(e))
    from .training.train import is_main_process

    try:
        result = reproduce(args.experiment, profile=args.profile, k=args.k, lam=args.lam,
                           seed=args.seed, seeds=args.seeds, model=args.model, out=out,
                           progress=not args.quiet,
                           device=args.device)
    except ValueError as e:  # e.g. k larger than a layer: a message, not a traceback
        parser.error(str(e))
    if not is_main_process():  # under accelerate launch: rank 0 reports for every process
        return 0
    r = result.results
    print(f"{r['experiment']}: {r['model']} on {r['data']}, {r['n_seeds']} seed(s); "
          f"{r['summary']['method']}")
    for name, iv in r["summary"]["numbers"].items():
        flag = "  finding" if iv["finding"] else ""
        print(f"  {name:<54} {Interval.from_dict(iv).format()}{flag}")
    print(f"wrote {out}/results.json and figures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
