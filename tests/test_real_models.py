"""The real Hugging Face branches, end to end, on a cache in the real on-disk format.

``hub_fixture`` writes tiny models under the real repository names (``gpt2``,
``EleutherAI/pythia-70m``, Pythia saved in float16 with a tokenizer of its own) and WikiText-2
as ``datasets`` caches it. Each check runs in a fresh Python with ``HF_HOME`` pointed at that
cache and ``HF_HUB_OFFLINE=1``: the libraries read both once, at import, exactly as a user's
session would. Nothing is downloaded.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers")
pytest.importorskip("datasets")

from tests.hub_fixture import GPT2_VOCAB, PYTHIA_VOCAB, build_hf_home  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HUB_IDS = {"gpt2": "gpt2", "pythia": "EleutherAI/pythia-70m",  # --model NAME -> the Hub id
           "pythia-14m": "EleutherAI/pythia-14m"}
VOCAB = {"gpt2": GPT2_VOCAB, "EleutherAI/pythia-70m": PYTHIA_VOCAB,
         "EleutherAI/pythia-14m": PYTHIA_VOCAB}
FALLBACK_WORDS = ("instead", "no internet", "offline", "stand-in")


@pytest.fixture(scope="session")
def hf_home(tmp_path_factory) -> Path:
    return build_hf_home(tmp_path_factory.mktemp("hf_home"))


def _python(args: list[str], hf_home: Path, tmp: Path, timeout: float = 300
            ) -> subprocess.CompletedProcess:
    """Run ``python ARGS`` offline on the cache ``hf_home``, with a modlib cache of its own."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("HF_HUB_CACHE", "HF_DATASETS_CACHE", "TRANSFORMERS_CACHE",
                          "HUGGINGFACE_HUB_CACHE", "HF_DATASETS_OFFLINE")}
    env.update(HF_HOME=str(hf_home), HF_HUB_OFFLINE="1", MODLIB_CACHE=str(tmp / "modlib"),
               MODLIB_PROFILE="ci", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false",
               PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                          cwd=tmp, timeout=timeout)


def _script(code: str, hf_home: Path, tmp: Path) -> tuple[dict, str]:
    """Run ``code`` (which prints one JSON line last) offline; its result and its stdout."""
    proc = _python(["-c", code], hf_home, tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    *printed, last = proc.stdout.strip().splitlines()
    return json.loads(last), "\n".join(printed)


def test_fixture_has_the_hub_cache_layout(hf_home):
    from huggingface_hub import try_to_load_from_cache

    for repo in ("gpt2", "EleutherAI/pythia-70m"):
        folder = hf_home / "hub" / ("models--" + repo.replace("/", "--"))
        commit = (folder / "refs" / "main").read_text()
        assert re.fullmatch(r"[0-9a-f]{40}", commit), commit
        for name in ("config.json", "model.safetensors", "tokenizer.json"):
            path = try_to_load_from_cache(repo, name, cache_dir=hf_home / "hub")
            assert path == str(folder / "snapshots" / commit / name)
            assert Path(path).resolve().parent == folder / "blobs"
    pythia = json.loads((hf_home / "hub" / "models--EleutherAI--pythia-70m" / "snapshots" / commit
                         / "config.json").read_text())
    assert pythia.get("dtype", pythia.get("torch_dtype")) == "float16"


@pytest.fixture(scope="module", params=["gpt2", "pythia", "pythia-14m"])
def reproduced(request, hf_home, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"llm-{request.param}")
    proc = _python(["-m", "modlib", "reproduce", "llm", "--model", request.param, "--profile",
                    "ci", "--out", str(tmp / "out"), "--quiet"], hf_home, tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return request.param, proc, json.loads((tmp / "out" / "results.json").read_text())


@pytest.mark.slow
def test_reproduce_llm_fine_tunes_the_real_model_with_its_own_tokenizer(reproduced):
    model, proc, r = reproduced
    hub_id = HUB_IDS[model]
    assert r["model"] == hub_id and r["data"] == "wikitext-2"
    assert r["tokenizer"] == {"name": hub_id, "vocab_size": VOCAB[hub_id]}
    for run in ("baseline", "modular"):  # float32: no NaN from the float16 checkpoint
        assert math.isfinite(r[run]["loss"]) and math.isfinite(r[run]["perplexity"])
    assert not any(word in proc.stdout for word in FALLBACK_WORDS), proc.stdout


@pytest.mark.slow
def test_pretrained_loads_float32_with_the_models_own_tokenizer(hf_home, tmp_path):
    result, printed = _script("""
import json, torch, modlib
from modlib.training.data import get_tokenizer, load_text, token_blocks
out = {}
for name in ("pythia-70m", "gpt2"):
    pt = modlib.pretrained(name)
    text = load_text(20_000)
    ids = token_blocks(text.train, pt.tokenizer, 32)
    gpt2_ids = token_blocks(text.train, get_tokenizer(), 32)
    out[name] = {"dtypes": sorted({str(p.dtype) for p in pt.model.parameters()}),
                 "stand_in": pt.stand_in, "label": pt.label, "source": pt.source,
                 "tokenizer": [pt.tokenizer.name_or_path, len(pt.tokenizer)],
                 "max_id": int(ids.max()), "same_as_gpt2": torch.equal(ids[:4], gpt2_ids[:4]),
                 "half": str(next(modlib.pretrained(name, dtype=torch.float16)
                                  .model.parameters()).dtype),
                 "text": text.source}
out["get_tokenizer"] = [len(get_tokenizer(n)) for n in ("gpt2", "EleutherAI/pythia-70m")]
print(json.dumps(out))
""", hf_home, tmp_path)
    for name, hub_id in (("pythia-70m", "EleutherAI/pythia-70m"), ("gpt2", "gpt2")):
        r = result[name]
        assert r["dtypes"] == ["torch.float32"] and r["half"] == "torch.float16"
        assert not r["stand_in"] and r["label"] == r["source"] == hub_id
        assert r["tokenizer"] == [hub_id, VOCAB[hub_id]] and r["max_id"] < VOCAB[hub_id]
        assert r["text"] == "wikitext-2"
    assert not result["pythia-70m"]["same_as_gpt2"]  # Pythia's own tokenizer, not GPT-2's
    assert result["get_tokenizer"] == [GPT2_VOCAB, PYTHIA_VOCAB]
    assert not any(word in printed for word in FALLBACK_WORDS), printed


def test_a_cached_model_needs_no_network_and_no_offline_mode(hf_home, monkeypatch, capsys):
    import torch
    from huggingface_hub import constants

    import modlib

    knocked = []
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf_home / "hub"))
    monkeypatch.setattr("modlib.training.hub.reachable",
                        lambda *args, **kwargs: knocked.append(1))
    pt = modlib.pretrained("pythia-70m", progress=False)
    assert not pt.stand_in and pt.label == "EleutherAI/pythia-70m" and not knocked
    assert {p.dtype for p in pt.model.parameters()} == {torch.float32}
    assert len(pt.tokenizer) == PYTHIA_VOCAB and capsys.readouterr().out == ""


def _blob(hf_home: Path, repo: str, name: str) -> Path:
    snapshots = hf_home / "hub" / ("models--" + repo.replace("/", "--")) / "snapshots"
    return next(snapshots.iterdir()) / name


@pytest.mark.slow
def test_a_damaged_cached_file_is_an_error_naming_it(hf_home, tmp_path):
    damaged = tmp_path / "hf_home"
    shutil.copytree(hf_home, damaged, symlinks=True)
    for path, keep in ((_blob(damaged, "gpt2", "model.safetensors"), 300),
                       (_blob(damaged, "EleutherAI/pythia-70m", "config.json"), 10),
                       (next(damaged.glob("datasets/**/wikitext-train.arrow")), 1000)):
        blob = path.resolve()
        blob.write_bytes(blob.read_bytes()[:keep])  # a download cut short
    result, printed = _script("""
import json, modlib
from modlib.training.data import get_tokenizer, load_text
out = []
for call in (lambda: modlib.pretrained("gpt2"), lambda: get_tokenizer("EleutherAI/pythia-70m"),
             lambda: load_text()):
    try:
        call()
        out.append(None)
    except OSError as e:
        out.append(str(e))
print(json.dumps(out))
""", damaged, tmp_path)
    for message, name in zip(result, ("model.safetensors", "config.json", "wikitext-train.arrow"),
                             strict=True):
        assert message is not None and f"/{name} cannot be read (" in message, message
        assert "Delete the file to download it again." in message
    assert not any(word in printed for word in FALLBACK_WORDS), printed


@pytest.mark.slow
def test_offline_without_a_cache_falls_back_with_one_clean_sentence_each(tmp_path):
    empty = tmp_path / "empty_hf_home"
    empty.mkdir()
    result, printed = _script("""
import json, modlib, modlib.llm
pt = modlib.pretrained("pythia-70m", progress=False)
print(json.dumps([pt.stand_in, pt.label, type(pt.tokenizer).__name__,
                  modlib.llm.family(pt.model)]))
""", empty, tmp_path)
    assert result == [True, "tiny GPT-NeoX stand-in (offline)", "ByteTokenizer", "gpt_neox"]
    why = "offline mode (HF_HUB_OFFLINE) and not in the cache"
    assert printed.splitlines() == [
        f"modlib.data: WikiText-2: {why}, using Python's own help texts (pydoc_data) instead.",
        f"modlib.zoo: Pythia-70m: {why}, training a small GPT-NeoX-architecture stand-in with a "
        "byte-level tokenizer on Python's help texts instead.",
    ]
