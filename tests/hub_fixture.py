"""A Hugging Face cache in the real on-disk format, built offline in about a second.

``build_hf_home(root)`` fills ``root`` as ``$HF_HOME`` would be filled by downloading:

- ``hub/models--gpt2``, ``hub/models--EleutherAI--pythia-70m`` and ``…pythia-14m`` (the same
  tiny model: the two Pythias share their tokenizer): ``refs/main`` holds a commit
  hash, ``snapshots/<commit>/`` links each file to ``blobs/<hash>`` as ``huggingface_hub`` lays
  them out (git SHA-1 for small files, SHA-256 for the weights). The models are tiny
  (``GPT2LMHeadModel`` and ``GPTNeoXForCausalLM``), Pythia's saved in float16 as the real one
  is, each with a byte-level BPE tokenizer of its own trained here on Python's help texts
  (GPT-2's: ``GPT2_VOCAB`` tokens; Pythia's: ``PYTHIA_VOCAB``, embedded in a larger
  ``PYTHIA_EMBEDDINGS``-row matrix, as Pythia's 50,277 tokens are in 50,304 rows).
- ``datasets/Salesforce___wikitext/wikitext-2-raw-v1/0.0.0/<commit>/``: WikiText-2 as
  ``datasets`` caches it (Arrow files and ``dataset_info.json``, written by ``datasets``' own
  Parquet builder), its lines taken from Python's help texts.

Use it with ``HF_HOME=root`` and ``HF_HUB_OFFLINE=1``, set before ``huggingface_hub`` is imported
(a subprocess): both libraries read these variables once, at import.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

GPT2_VOCAB = 300  # tokens of the fixture's GPT-2 tokenizer (the real one has 50,257)
PYTHIA_VOCAB = 384  # tokens of the fixture's Pythia tokenizer (the real one has 50,277)
PYTHIA_EMBEDDINGS = 400  # rows of the fixture Pythia's embedding (the real one has 50,304)
WIKITEXT_COMMIT = "b08601e04326c79dfdd32d625aee71d232d685c3"
_EOS = "<|endoftext|>"


def build_hf_home(root: Path) -> Path:
    """Write the fixture cache under ``root`` (``$HF_HOME``) and return ``root``."""
    import torch
    from transformers import (
        GPT2Config,
        GPT2LMHeadModel,
        GPT2TokenizerFast,
        GPTNeoXConfig,
        GPTNeoXForCausalLM,
        GPTNeoXTokenizerFast,
    )

    torch.manual_seed(0)
    texts = _help_texts()
    gpt2_tok = GPT2TokenizerFast(tokenizer_object=_bpe(texts, GPT2_VOCAB, [_EOS]),
                                 bos_token=_EOS, eos_token=_EOS, unk_token=_EOS)
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=GPT2_VOCAB, n_positions=64, n_embd=32,
                                      n_layer=2, n_head=2, bos_token_id=0, eos_token_id=0))
    pythia_tok = GPTNeoXTokenizerFast(
        tokenizer_object=_bpe(texts[::-1], PYTHIA_VOCAB, [_EOS, "<|padding|>"]),
        bos_token=_EOS, eos_token=_EOS, unk_token=_EOS, pad_token="<|padding|>")
    pythia = GPTNeoXForCausalLM(GPTNeoXConfig(
        vocab_size=PYTHIA_EMBEDDINGS, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=128, max_position_embeddings=64, bos_token_id=0, eos_token_id=0))
    pythia = pythia.half()  # as the real checkpoints are stored
    for repo, model, tokenizer in (("gpt2", gpt2, gpt2_tok),
                                   ("EleutherAI/pythia-70m", pythia, pythia_tok),
                                   ("EleutherAI/pythia-14m", pythia, pythia_tok)):
        files = root / "build" / repo
        model.save_pretrained(files)
        tokenizer.save_pretrained(files)
        _hub_layout(root / "hub", repo, files)
    _wikitext(root, texts)
    shutil.rmtree(root / "build")
    return root


def _help_texts() -> list[str]:
    from pydoc_data.topics import topics

    return [topics[name] for name in sorted(topics)]


def _bpe(texts: list[str], vocab_size: int, special: list[str]):
    """A byte-level BPE tokenizer (GPT-2's kind) of ``vocab_size`` tokens, trained on texts."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator(texts[:80], trainer)
    return tokenizer


def _hub_layout(hub: Path, repo: str, files: Path) -> None:
    """``hub/models--{repo}/{refs/main, snapshots/<commit>/*, blobs/*}``, as huggingface_hub
    writes them."""
    folder = hub / ("models--" + repo.replace("/", "--"))
    commit = hashlib.sha1(repo.encode()).hexdigest()  # any 40 hex digits name a commit
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)  # no newline, as huggingface_hub writes it
    (folder / "blobs").mkdir()
    snapshot = folder / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for path in sorted(files.iterdir()):
        data = path.read_bytes()
        if path.suffix == ".safetensors":  # stored in Git LFS: named by SHA-256
            blob = hashlib.sha256(data).hexdigest()
        else:  # a plain git blob: named by its git SHA-1
            blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        (folder / "blobs" / blob).write_bytes(data)
        os.symlink(f"../../blobs/{blob}", snapshot / path.name)


def _wikitext(root: Path, texts: list[str]) -> None:
    """WikiText-2 as ``datasets`` caches a Hub dataset, prepared by its Parquet builder."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets.packaged_modules.parquet.parquet import Parquet

    parquet = root / "build" / "wikitext"
    parquet.mkdir(parents=True)
    splits = {"train": texts[20:120], "validation": texts[:10], "test": texts[10:20]}
    data_files = {}
    for split, chosen in splits.items():
        lines = [line + "\n" for text in chosen for line in text.splitlines()]  # one row a line
        data_files[split] = [str(parquet / f"{split}-00000-of-00001.parquet")]
        pq.write_table(pa.table({"text": lines}), data_files[split][0])
    builder = Parquet(cache_dir=str(root / "build" / "datasets"), dataset_name="wikitext",
                      config_name="wikitext-2-raw-v1", hash=WIKITEXT_COMMIT,
                      data_files=data_files)
    builder.download_and_prepare()
    # the builder names its folder after local files; the Hub's dataset has this one
    target = root / "datasets" / "Salesforce___wikitext" / "wikitext-2-raw-v1" / "0.0.0"
    target.mkdir(parents=True)
    shutil.move(builder.cache_dir, target / WIKITEXT_COMMIT)
