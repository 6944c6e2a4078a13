"""Evaluation on a language's fixed test split: greedy translation scored by sacrebleu, and test loss.

- Translation: the fixed evaluation prompt (`prompts.eval_prompt`), batched greedy decoding with the KV
  cache and left padding, batches of similar prompt length, at most ~1.5× the reference length of new
  tokens (never more than `train.max_new_tokens`), stopping at EOS.
- chrF (the default metric: character n-grams need no word tokenizer, so scores are comparable across
  scripts) and BLEU with a tokenizer suited to the language (`bleu_tokenize`).
- Test loss: teacher-forced mean negative log-likelihood per response token (+EOS) under the same prompt.
- COMET (optional): when `train.comet_checkpoint` names a local checkpoint and `unbabel-comet` is installed.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import torch

from core.errors import UserError
from trainers.prompts import eval_example, eval_prompt
from trainers.train import accepts_logits_to_keep, autocast, iterate_batches, response_nll

if TYPE_CHECKING:
    from core.config import PlannerConfig
    from trainers.data import LanguageData, Pair

# sacrebleu's offline tokenizers: Chinese gets its word-free tokenizer, languages written without
# spaces between words are scored per character, everything else with the standard 13a tokenizer.
_BLEU_TOKENIZERS = {"zh": "zh", "yue": "zh", "ja": "char", "th": "char", "lo": "char", "km": "char", "my": "char"}
LENGTH_FACTOR = 1.5  # new-token bound relative to the reference
LENGTH_SLACK = 4


@dataclass
class Evaluation:
    metrics: dict[str, float]
    sources: list[str]
    references: list[str]
    hypotheses: list[str]
    seconds: float

    def samples(self, n: int) -> list[dict]:
        return [
            {"source": s, "reference": r, "hypothesis": h}
            for s, r, h in list(zip(self.sources, self.references, self.hypotheses))[:n]
        ]


def bleu_tokenize(language: str) -> str:
    return _BLEU_TOKENIZERS.get(language.lower().replace("_", "-").split("-")[0], "13a")


def score_translations(hypotheses: Sequence[str], references: Sequence[str], language: str) -> dict[str, float]:
    from sacrebleu.metrics import BLEU, CHRF

    refs = [list(references)]
    return {
        "chrf": CHRF().corpus_score(list(hypotheses), refs).score,
        "bleu": BLEU(tokenize=bleu_tokenize(language)).corpus_score(list(hypotheses), refs).score,
    }


def _language(language) -> tuple[str, str]:
    if isinstance(language, tuple):
        return language
    return language.language, language.name


def clean_output(text: str) -> str:
    """The translation in a generated continuation: everything before a new prompt section, if the model
    went on to write one (every section header starts with '###')."""
    return text.split("###")[0].strip()


def new_token_budget(reference_lengths: Sequence[int], cap: int, room: int) -> int:
    """New tokens for a batch: ~1.5× its longest reference, at most `cap`, and no further than the
    context the model was trained on (`room` positions left after the prompt), but at least one."""
    return max(1, min(cap, room, math.ceil(LENGTH_FACTOR * max(reference_lengths)) + LENGTH_SLACK))


@torch.inference_mode()
def translate(
    cfg: "PlannerConfig", model, tokenizer, sources: Sequence[str], language_name: str, references: Sequence[str]
) -> list[str]:
    """Greedy translations of `sources`, in order. `references` only bound the generation length."""
    from transformers import GenerationConfig

    device = next(model.parameters()).device
    prompts = tokenizer([eval_prompt(s, language_name) for s in sources], add_special_tokens=True)["input_ids"]
    ref_lengths = [len(ids) for ids in tokenizer(list(references), add_special_tokens=False)["input_ids"]]
    order = sorted(range(len(sources)), key=lambda i: len(prompts[i]))
    out = [""] * len(sources)
    bs = cfg.train.eval_batch_size
    for k in range(0, len(order), bs):
        idx = order[k : k + bs]
        width = max(len(prompts[i]) for i in idx)
        ids = torch.full((len(idx), width), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, i in enumerate(idx):  # left padding: every prompt ends where generation starts
            ids[row, width - len(prompts[i]) :] = torch.tensor(prompts[i])
            mask[row, width - len(prompts[i]) :] = 1
        gen = GenerationConfig(
            max_new_tokens=new_token_budget(
                [ref_lengths[i] for i in idx], cfg.train.max_new_tokens, cfg.model.context_length - width
            ),
            do_sample=False,
            num_beams=1,
            use_cache=True,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            bos_token_id=tokenizer.bos_token_id,
        )
        with autocast(device, cfg.model.precision):
            generated = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), generation_config=gen)
        texts = tokenizer.batch_decode(generated[:, width:], skip_special_tokens=True)
        for i, text in zip(idx, texts):
            out[i] = clean_output(text)
    return out


@torch.inference_mode()
def test_loss(cfg: "PlannerConfig", model, tokenizer, pairs: Sequence["Pair"], language_name: str) -> float:
    """Mean NLL per reference token (+EOS) given the evaluation prompt (teacher forcing)."""
    device = next(model.parameters()).device
    examples = [eval_example(p, language_name) for p in pairs]
    use_keep = accepts_logits_to_keep(model)
    total, count = 0.0, 0
    for batch in iterate_batches(tokenizer, examples, cfg.train.eval_batch_size, cfg.model.context_length):
        with autocast(device, cfg.model.precision):
            nll, n = response_nll(model, batch.to(device), use_keep)
        total += float(nll)
        count += int(n)
    return total / count if count else float("nan")


def comet_score(checkpoint: str, sources, hypotheses, references, batch_size: int) -> float:
    """System COMET ×100 from a local checkpoint file (the user's own; it is unpickled by COMET)."""
    try:
        from comet import load_from_checkpoint
    except ImportError:
        raise UserError(
            "train.comet_checkpoint is set but the `unbabel-comet` package is not installed.",
            "Install it (pip install unbabel-comet) or remove train.comet_checkpoint.",
        ) from None
    path = Path(checkpoint).expanduser()
    if not path.is_file():
        raise UserError(
            f"train.comet_checkpoint {path} is not a file.",
            "Point it at a downloaded COMET checkpoint (…/checkpoints/model.ckpt); nothing is downloaded.",
        )
    scorer = load_from_checkpoint(str(path))
    data = [{"src": s, "mt": h, "ref": r} for s, h, r in zip(sources, hypotheses, references)]
    gpus = 1 if torch.cuda.is_available() else 0
    return 100.0 * float(scorer.predict(data, batch_size=batch_size, gpus=gpus, progress_bar=False).system_score)


def run_evaluation(cfg: "PlannerConfig", model, tokenizer, language, test_pairs: Sequence["Pair"]) -> Evaluation:
    """Translate and score `test_pairs` (all of them; callers pick the evaluation subset)."""
    code, name = _language(language)
    if not test_pairs:
        raise ValueError(f"no test pairs to evaluate {code} on")
    start = time.perf_counter()
    was_training = model.training
    model.eval()
    try:
        sources = [p.source for p in test_pairs]
        references = [p.target for p in test_pairs]
        hypotheses = translate(cfg, model, tokenizer, sources, name, references)
        metrics = score_translations(hypotheses, references, code)
        metrics["loss"] = test_loss(cfg, model, tokenizer, test_pairs, name)
        if cfg.train.comet_checkpoint:
            metrics["comet"] = comet_score(cfg.train.comet_checkpoint, sources, hypotheses, references, cfg.train.eval_batch_size)
    finally:
        model.train(was_training)
    return Evaluation(metrics, sources, references, hypotheses, time.perf_counter() - start)


def evaluate(cfg: "PlannerConfig", model, tokenizer, language: "LanguageData | tuple[str, str]", test_pairs) -> dict[str, float]:
    """chrF, BLEU and test loss (and COMET when configured) of `model` on `test_pairs`.

    `language` is a `LanguageData` or a `(code, display name)` tuple."""
    return run_evaluation(cfg, model, tokenizer, language, test_pairs).metrics
