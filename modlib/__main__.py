"""The command line: ``python -m modlib reproduce {mnist,cifar,modadd,llm} [options]``.

Trains the baseline and the modular model of one of the paper's experiments, measures both and
writes the models, ``results.json`` and figures to ``--out``. Every option, and that ``--out`` is
a folder that can be written to, is checked before any training: a bad one exits with status 2
and one line on stderr. Under Accelerate
(``accelerate launch -m modlib reproduce llm``) the same command runs on several GPUs.

``python -m modlib analyze MODEL [options]`` measures any model instead (a saved module, a
torchvision name, a Hugging Face folder or Hub id): the clusterability of each layer against
chance and against shuffled weights (:mod:`modlib.course.analyze`).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
from pathlib import Path
from typing import get_args

from .core.stats import Interval
from .course.analyze import analyze_model, load_any, out_folder, save_analysis
from .course.experiments import (
    BIMT_LAMS,
    METHODS,
    MODELS,
    Experiment,
    check_device,
    check_out,
    claims,
    reproduce,
)
from .training.profiles import ProfileName, profile

__all__ = ["main"]

_EPILOG = """\
Every seed (--seed, --seed + 1, ...) has its own data split, initialisation and batch order,
shared by its runs: a baseline (lam 0), the modular model (--lam) and, for mnist and cifar, a
sparse control (the same penalty on a mask of as many entries, scattered at random: as sparse
as the modular model, without modules). With --method bimt (mnist, modadd) each seed also trains
a BIMT model (brain-inspired modular training: neurons placed in the plane, an L1 penalty of
--bimt-lam times each connection's length, neurons swapped to shorten connections); an earlier
run of the same arguments without it is reused from the cache, so that only BIMT trains. Every
run records seconds_per_step and, for mnist and modadd, connection_cost.

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
  python -m modlib reproduce modadd --method bimt --profile ci
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
                        "T4: <= 1 hour a notebook), paper (the paper's scale: an A100 or "
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
    r.add_argument("--method", choices=list(METHODS), default="clusterability",
                   help="clusterability: baseline and modular (default); bimt: also a BIMT model "
                        "(mnist and modadd)")
    lams = ", ".join(f"{n} {v:g}" for n, v in BIMT_LAMS.items())
    r.add_argument("--bimt-lam", type=float, default=None,
                   help=f"λ of the BIMT run (default: {lams})")
    r.add_argument("--quiet", action="store_true", help="no progress bars")
    _analyze_parser(sub)
    return p


_ANALYZE_EPILOG = """\
MODEL is, in this order: a .pt/.pth file written by torch.save(model) (a pickled module: it is
loaded with weights_only=False, so load only files you trust; a state dict is refused), a Hugging
Face model folder, a torchvision name (torchvision.models.list_models(); random initialisation
unless --pretrained), or a Hugging Face Hub id (from the cache, else downloaded).

Every layer with a weight graph (Linear, Conv2d, GPT-2's Conv1D) is co-clustered into k clusters.
Per layer: clusterability of that partition, its chance level, the excess (clusterability -
chance) and the p-value of --shuffles copies of the layer with its weights in random places
(the smallest p-value is 1/(shuffles+1)), or with --null scales of scale-matched copies, which
keep every neuron's size and drop only the modules (stricter for trained layers, whose neurons
differ in size). A layer with a side smaller than k is skipped with a
note. Cost: 1 + shuffles co-clusterings a layer (about 0.15 s each for 3072 x 768 on one core);
--shuffles 0 skips the null. Writes results.json and clusterability.png to --out.

examples:
  python -m modlib analyze resnet18 --layers 'layer4.*' --shuffles 9
  python -m modlib analyze resnet18 --pretrained --null scales
  python -m modlib analyze my_model.pt --k 4     # saved with torch.save(model)
  python -m modlib analyze gpt2 --layers 'h.0.*' --out results/gpt2
"""


def _analyze_parser(sub: argparse._SubParsersAction) -> None:
    a = sub.add_parser("analyze", help="measure any model: each layer's clusterability against "
                       "chance and shuffled weights",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=_ANALYZE_EPILOG)
    a.add_argument("model", metavar="MODEL", help="a .pt file, a Hugging Face folder or Hub id, "
                   "or a torchvision model name")
    a.add_argument("--k", type=int, default=4, help="clusters per layer (default 4)")
    a.add_argument("--layers", nargs="+", metavar="PATTERN", default=None,
                   help="layer names or glob patterns, e.g. 'layer1.*' fc (a module's name "
                        "selects the layers inside it; default: every weight layer)")
    a.add_argument("--shuffles", type=int, default=19,
                   help="null copies per layer for the p-value (default 19; 0: none)")
    a.add_argument("--null", choices=["shuffle", "scales"], default="shuffle",
                   help="the null copies: the layer's entries shuffled (default), or "
                        "scale-matched (every neuron keeps its size)")
    a.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    a.add_argument("--pretrained", action="store_true",
                   help="torchvision only: pretrained weights instead of a random "
                        "initialisation")
    a.add_argument("--out", default=None, help="folder for results.json and clusterability.png "
                                               "(default results/analyze-NAME)")
    a.add_argument("--quiet", action="store_true", help="no progress bar")


def _analyze(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """``python -m modlib analyze``: every bad input exits with status 2 and one line."""
    if args.k < 2:
        parser.error(f"--k must be >= 2, got {args.k}")
    if args.shuffles < 0:
        parser.error(f"--shuffles must be >= 0, got {args.shuffles}")
    layers = None if args.layers is None else [p for arg in args.layers for p in arg.split(",")
                                               if p]
    out = args.out or str(out_folder(args.model))
    made = [p for p in (Path(out), *Path(out).parents) if not p.exists()]  # to undo on failure
    try:
        if not made:  # an existing --out is checked first; a new one is made after the loading
            check_out(out)  # (a new folder named like the model must not be taken for it)
        model, label = load_any(args.model, pretrained=args.pretrained,
                                progress=not args.quiet)
        check_out(out)
        analysis = analyze_model(model, k=args.k, layers=layers, n_shuffles=args.shuffles,
                                 seed=args.seed, progress=not args.quiet, label=label,
                                 null=args.null)
    except (TypeError, ValueError) as e:
        for folder in made:  # leave no empty folder behind a refused command
            with contextlib.suppress(OSError):
                folder.rmdir()
        parser.error(" ".join(str(e).split()))
    print(analysis.table())
    import matplotlib

    matplotlib.use("Agg")
    paths = save_analysis(analysis, out)
    print(f"wrote {paths['results']} and {paths['figure']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m modlib``; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "analyze":
        return _analyze(parser, args)
    if args.k < 1:
        parser.error(f"--k must be >= 1, got {args.k}")
    if args.seeds is not None and args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    if not (math.isfinite(args.lam) and args.lam >= 0):
        parser.error(f"--lam must be a finite real >= 0, got {args.lam}")
    if args.bimt_lam is not None and args.method != "bimt":
        parser.error("--bimt-lam applies to --method bimt only")
    if args.bimt_lam is not None and not (math.isfinite(args.bimt_lam) and args.bimt_lam >= 0):
        parser.error(f"--bimt-lam must be a finite real >= 0, got {args.bimt_lam}")
    if args.method == "bimt" and args.experiment not in BIMT_LAMS:
        parser.error(f"--method bimt applies to {' and '.join(BIMT_LAMS)}, not "
                     f"{args.experiment}")
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
                           progress=not args.quiet, device=args.device,
                           method=args.method, bimt_lam=args.bimt_lam)
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
    print("the paper's claims on these seeds:")
    for claim in claims(r):
        print(f"  {claim}")
    print(f"wrote {out}/results.json and figures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
