"""Evaluation on a language's fixed test split: greedy translation scored by sacrebleu, and test loss.

- Translation: the fixed evaluation prompt (`prompts.eval_example`, in the run's prompt format), batched
  greedy decoding with the KV cache and left padding, batches of similar prompt length, at most ~1.5×
  the batch's longest reference of new tokens, counted in the model's own tokens so a script that takes
  many tokens per word gets the room it needs (and never more than `train.max_new_tokens` when that is
  set, nor past the context length), stopping at EOS or the
  chat template's end of turn. One repetition control, the same for every run (zero-shot, proxy and
  final): `train.no_repeat_ngram_size` and/or `train.repetition_penalty`, both counted on the generated
  tokens only — a translation legitimately copies names, numbers and placeholders from its source, which
  the standard processors (that also count the prompt) would forbid or penalise. A translation has as
  many lines as its source: decoding of a row stops at the line break that would exceed them, and
  anything after it (a chat model's "This means …" explanation) is not part of the hypothesis.
- chrF (the default metric: character n-grams need no word tokenizer, so scores are comparable across
  scripts) and BLEU with a tokenizer suited to the language (`bleu_tokenize`); spBLEU (BLEU over the
  FLORES-200 SentencePiece pieces, one tokenizer for every language) when asked for. Every score comes
  with its sacreBLEU signature (`Evaluation.signatures`), which says exactly how it was computed.
- Test loss: teacher-forced mean negative log-likelihood per response token (+EOS) under the same prompt.
- COMET (optional): when `train.comet_checkpoint` names a local checkpoint and `unbabel-comet` is installed.
"""

from __future__ import annotations

import importlib.util
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
from transformers import LogitsProcessor, StoppingCriteria

from core.config import HELDOUT_METRICS
from core.errors import UserError
from trainers.prompts import PromptFormat, eval_example
from trainers.train import accepts_logits_to_keep, autocast, iterate_batches, response_nll_rows

if TYPE_CHECKING:
    from core.config import PlannerConfig
    from trainers.data import LanguageData, Pair

# sacrebleu's offline tokenizers: Chinese gets its word-free tokenizer, languages written without
# spaces between words are scored per character, everything else with the standard 13a tokenizer.
_BLEU_TOKENIZERS = {"zh": "zh", "yue": "zh", "ja": "char", "th": "char", "lo": "char", "km": "char", "my": "char"}
LENGTH_FACTOR = 1.5  # new-token bound relative to the reference
LOSS_BATCH_ROWS = 16  # rows per test-loss batch at most (see heldout_loss)
LENGTH_SLACK = 4
SPBLEU = "spbleu"
SPBLEU_TOKENIZER = "flores200"  # sacreBLEU's name of the FLORES-200 SentencePiece tokenizer


@dataclass
class Evaluation:
    metrics: dict[str, float]
    sources: list[str]
    references: list[str]
    hypotheses: list[str]
    seconds: float
    # metric -> its sacreBLEU signature ("nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0")
    signatures: dict[str, str] = field(default_factory=dict)

    def samples(self, n: int) -> list[dict]:
        return [
            {"source": s, "reference": r, "hypothesis": h}
            for s, r, h in list(zip(self.sources, self.references, self.hypotheses))[:n]
        ]


def bleu_tokenize(language: str) -> str:
    return _BLEU_TOKENIZERS.get(language.lower().replace("_", "-").split("-")[0], "13a")


def _scorers(language: str, spbleu: bool) -> dict:
    from sacrebleu.metrics import BLEU, CHRF

    scorers = {"chrf": CHRF(), "bleu": BLEU(tokenize=bleu_tokenize(language))}
    if spbleu:
        spbleu_model_path()  # a clear error before sacrebleu would try to download it
        scorers[SPBLEU] = BLEU(tokenize=SPBLEU_TOKENIZER)
    return scorers


def score_with_signatures(hypotheses: Sequence[str], references: Sequence[str], language: str,
                          spbleu: bool = False) -> tuple[dict[str, float], dict[str, str]]:
    """Each generated metric's score and its sacreBLEU signature (tokenizer, case, smoothing, n-gram
    orders, sacreBLEU version), which says whether a score is comparable with a published one."""
    refs = [list(references)]
    scores, signatures = {}, {}
    for name, scorer in _scorers(language, spbleu).items():
        scores[name] = scorer.corpus_score(list(hypotheses), refs).score
        signatures[name] = str(scorer.get_signature())  # known only once the scorer has seen the references
    return scores, signatures


def score_translations(hypotheses: Sequence[str], references: Sequence[str], language: str,
                       spbleu: bool = False) -> dict[str, float]:
    return score_with_signatures(hypotheses, references, language, spbleu)[0]


def spbleu_model_path() -> Path:
    """sacreBLEU's FLORES-200 SentencePiece model, from its cache ($SACREBLEU, default ~/.sacrebleu).
    sacreBLEU would download it on first use; the planner never downloads at run time, so a missing file
    (or a missing `sentencepiece`) is a UserError saying how to fetch it once."""
    from sacrebleu.tokenizers import tokenizer_spm  # where the tokenizer itself looks, in its own words

    url = tokenizer_spm.SPM_MODELS[SPBLEU_TOKENIZER]["url"]
    path = Path(tokenizer_spm.SACREBLEU_DIR) / "models" / Path(url).name
    if importlib.util.find_spec("sentencepiece") is None:
        raise UserError("spBLEU (train.spbleu or fit.metric spbleu) needs the `sentencepiece` package.",
                        "Install it: pip install 'coit-planner[spbleu]' (or pip install sentencepiece).")
    if not path.is_file():
        raise UserError(
            f"spBLEU needs sacreBLEU's FLORES-200 SentencePiece model {path}, which is not there (nothing is "
            "downloaded at run time).",
            f"Fetch it once, online: mkdir -p {path.parent} && curl -L -o {path} {url} (or run sacrebleu once "
            "with --tokenize flores200); set $SACREBLEU to use another cache directory.",
        )
    return path


def wants_spbleu(cfg: "PlannerConfig") -> bool:
    return cfg.train.spbleu or cfg.fit.metric == SPBLEU


def _language(language) -> tuple[str, str]:
    if isinstance(language, tuple):
        return language
    return language.language, language.name


def clean_output(text: str, lines: int | None = None) -> str:
    """The translation in a generated continuation: everything before a new prompt section, if the model
    went on to write one (every section header starts with '###'), and at most `lines` lines — as many
    as its source has: a chat model often follows a translation with a blank line and an explanation."""
    text = text.split("###")[0].strip()
    if lines is not None:
        text = "\n".join(text.split("\n")[:lines]).strip()
    return text


def source_lines(text: str) -> int:
    return text.count("\n") + 1


def newline_token_ids(tokenizer) -> torch.Tensor:
    """Ids of every token whose text holds a line break (computed once per tokenizer)."""
    cached = getattr(tokenizer, "_planner_newline_ids", None)
    if cached is None:
        texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
        cached = torch.tensor([i for i, t in enumerate(texts) if "\n" in t], dtype=torch.long)
        tokenizer._planner_newline_ids = cached
    return cached


class LineStop(StoppingCriteria):
    """A stopping criterion (the `transformers` protocol: `(input_ids, scores) -> done per row`): a row
    is done once its output, after `start`, has as many line breaks after some text as its source has
    lines, since `clean_output` drops everything from there. Saves most of a chat model's zero-shot
    decoding, which would otherwise explain its translation until the length bound."""

    def __init__(self, start: int, newline_ids: torch.Tensor, lines: Sequence[int]):
        self.start, self.newline_ids, self.lines = start, newline_ids, torch.tensor(list(lines))

    def __call__(self, input_ids: torch.LongTensor, scores=None, **kwargs) -> torch.BoolTensor:
        out = input_ids[:, self.start :]
        breaks = torch.isin(out, self.newline_ids.to(out.device))
        after_text = torch.cumsum(~breaks, dim=1) > 0  # leading blank lines do not count
        return (breaks & after_text).sum(dim=1) >= self.lines.to(out.device)


def new_token_budget(reference_lengths: Sequence[int], cap: int | None, room: int) -> int:
    """New tokens for a batch: ~1.5× its longest reference (in the model's tokens), at most `cap` when
    set (`train.max_new_tokens`), and no further than the context the model was trained on (`room`
    positions left after the prompt), but at least one."""
    wanted = math.ceil(LENGTH_FACTOR * max(reference_lengths)) + LENGTH_SLACK
    return max(1, min(wanted, room, cap if cap is not None else wanted))


class OutputRepetitionControl(LogitsProcessor):
    """A logits processor (the `transformers` protocol: `(input_ids, scores) -> scores`) that looks only
    at the tokens generated after position `start` (the common left-padded prompt width):

    - `no_repeat_ngram_size` n > 0: a token that would complete an n-gram the output already contains
      gets −inf (the greedy loop "der der der …" cannot start again);
    - `repetition_penalty` p > 1: the logit of a token already in the output is divided by p when
      positive and multiplied by p when negative (the usual CTRL rule).
    """

    def __init__(self, start: int, no_repeat_ngram_size: int = 0, repetition_penalty: float = 1.0):
        self.start, self.n, self.penalty = start, no_repeat_ngram_size, repetition_penalty

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        out = input_ids[:, self.start :]
        if out.shape[1] == 0:
            return scores
        if self.penalty != 1.0:
            seen = scores.gather(1, out)
            scores = scores.scatter(1, out, torch.where(seen > 0, seen / self.penalty, seen * self.penalty))
        n = self.n
        if n > 0 and out.shape[1] >= n:
            rows = out.tolist()
            banned_rows, banned_tokens = [], []
            for r, seq in enumerate(rows):
                prefix = tuple(seq[len(seq) - n + 1 :]) if n > 1 else ()
                for k in range(len(seq) - n + 1):
                    if tuple(seq[k : k + n - 1]) == prefix:
                        banned_rows.append(r)
                        banned_tokens.append(seq[k + n - 1])
            if banned_rows:
                index = (torch.tensor(banned_rows, device=scores.device), torch.tensor(banned_tokens, device=scores.device))
                scores = scores.index_put(index, torch.tensor(float("-inf"), dtype=scores.dtype, device=scores.device))
        return scores


@torch.inference_mode()
def translate(
    cfg: "PlannerConfig", model, tokenizer, sources: Sequence[str], language_name: str, references: Sequence[str]
) -> list[str]:
    """Greedy translations of `sources`, in order. `references` only bound the generation length."""
    from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

    from trainers.data import Pair

    device = next(model.parameters()).device
    fmt = PromptFormat.from_config(cfg, tokenizer)
    prompts = fmt.prompt_ids([eval_example(Pair(s, r), language_name) for s, r in zip(sources, references)])
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
            eos_token_id=fmt.stop_ids,
            bos_token_id=tokenizer.bos_token_id,
        )
        control = LogitsProcessorList()
        if cfg.train.no_repeat_ngram_size or cfg.train.repetition_penalty != 1.0:
            control.append(OutputRepetitionControl(width, cfg.train.no_repeat_ngram_size, cfg.train.repetition_penalty))
        lines = [source_lines(sources[i]) for i in idx]
        stop = StoppingCriteriaList([LineStop(width, newline_token_ids(tokenizer), lines)])
        with autocast(device, cfg.model.precision):
            generated = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), generation_config=gen,
                                       logits_processor=control, stopping_criteria=stop)
        texts = tokenizer.batch_decode(generated[:, width:], skip_special_tokens=True)
        for i, n, text in zip(idx, lines, texts):
            out[i] = clean_output(text, n)
    return out


@dataclass(frozen=True)
class HeldOut:
    """Teacher-forced scores of a test set: what a scaling law predicts (smooth in the data, unlike a
    generated metric), each with its standard error over the test sentences (its sampling noise).

    loss: mean NLL (nats) per response token (+ the end token) under the evaluation prompt; depends on
    the tokenizer. bpb: the same NLL in bits per UTF-8 byte of the reference text, comparable across
    languages, scripts and tokenizers. A reference cut by the context length is left out of both."""

    loss: float
    loss_se: float
    bpb: float
    bpb_se: float
    sentences: int

    def metrics(self) -> dict[str, float]:
        return {"loss": self.loss, "loss_se": self.loss_se, "bpb": self.bpb, "bpb_se": self.bpb_se}


def ratio_se(numerators: np.ndarray, denominators: np.ndarray) -> tuple[float, float]:
    """Σy/Σn over sentences and its standard error (the ratio estimator's linearisation: sentences are the
    sampled units, tokens within one are not independent)."""
    m = len(numerators)
    total = float(denominators.sum())
    if m == 0 or total <= 0:
        return float("nan"), float("nan")
    ratio = float(numerators.sum()) / total
    if m < 2:
        return ratio, float("nan")
    residual = numerators - ratio * denominators
    return ratio, math.sqrt(m / (m - 1) * float((residual**2).sum())) / total


@torch.inference_mode()
def heldout_loss(cfg: "PlannerConfig", model, tokenizer, pairs: Sequence["Pair"], language_name: str) -> HeldOut:
    """Loss per token and bits per byte of `pairs`' references given the evaluation prompt (teacher forcing)."""
    device = next(model.parameters()).device
    examples = [eval_example(p, language_name) for p in pairs]
    expected = {id(e): len(ids) + 1 for e, ids in  # the response's tokens and the end token
                zip(examples, tokenizer([e.response for e in examples], add_special_tokens=False)["input_ids"])}
    use_keep = accepts_logits_to_keep(model)
    fmt = PromptFormat.from_config(cfg, tokenizer)
    nll, tokens, utf8 = [], [], []
    # Small length-sorted batches: one batch of 50 padded to its longest example (~190 tokens for Greek
    # against ~90 on average) doubled the work of the whole teacher-forced pass.
    rows = min(cfg.train.eval_batch_size, LOSS_BATCH_ROWS)
    for batch in iterate_batches(tokenizer, examples, rows, cfg.model.context_length, fmt):
        with autocast(device, cfg.model.precision):
            row_nll, row_tokens = response_nll_rows(model, batch.to(device), use_keep)
        for example, y, n in zip(batch.examples, row_nll.tolist(), row_tokens.tolist()):
            if n == expected[id(example)]:
                nll.append(y)
                tokens.append(n)
                utf8.append(len(example.response.encode("utf-8")))
    nll_a = np.asarray(nll, dtype=float)
    loss, loss_se = ratio_se(nll_a, np.asarray(tokens, dtype=float))
    bpb, bpb_se = ratio_se(nll_a / math.log(2), np.asarray(utf8, dtype=float))
    return HeldOut(loss, loss_se, bpb, bpb_se, len(nll))


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


@contextmanager
def merged_adapters(model):
    """Evaluate a LoRA model with its adapters folded into the weights, so decoding runs one matmul per
    layer instead of three plus the adapter bookkeeping (about twice as fast per generated token). The
    weights the adapters merge into are copied first and restored after, so the model leaves exactly as
    it came (merging into bf16 weights rounds, and unmerging would not undo that)."""
    if not hasattr(model, "merge_adapter"):
        yield
        return
    from peft.tuners.tuners_utils import BaseTunerLayer

    saved = [(layer.get_base_layer().weight, layer.get_base_layer().weight.detach().clone())
             for layer in model.modules() if isinstance(layer, BaseTunerLayer)]
    with torch.no_grad():
        model.merge_adapter()
    try:
        yield
    finally:
        with torch.no_grad():
            model.unmerge_adapter()
            for weight, original in saved:
                weight.copy_(original)


def run_evaluation(cfg: "PlannerConfig", model, tokenizer, language, test_pairs: Sequence["Pair"],
                   loss_pairs: Sequence["Pair"] | None = None, generate: bool = True) -> Evaluation:
    """Score `model` on a language's test split: the held-out loss and bits per byte on `loss_pairs`
    (default `test_pairs`) and, with `generate`, translations of `test_pairs` scored by sacrebleu."""
    code, name = _language(language)
    if not test_pairs:
        raise ValueError(f"no test pairs to evaluate {code} on")
    start = time.perf_counter()
    was_training = model.training
    model.eval()
    sources, references, hypotheses = [p.source for p in test_pairs], [p.target for p in test_pairs], []
    signatures: dict[str, str] = {}
    try:
        with merged_adapters(model):
            metrics = heldout_loss(cfg, model, tokenizer, loss_pairs or test_pairs, name).metrics()
            if generate:
                if wants_spbleu(cfg):
                    spbleu_model_path()  # fail before decoding, not after it
                hypotheses = translate(cfg, model, tokenizer, sources, name, references)
                scores, signatures = score_with_signatures(hypotheses, references, code, wants_spbleu(cfg))
                metrics.update(scores)
        if generate and cfg.train.comet_checkpoint:
            metrics["comet"] = comet_score(cfg.train.comet_checkpoint, sources, hypotheses, references, cfg.train.eval_batch_size)
    finally:
        model.train(was_training)
    return Evaluation(metrics, sources if generate else [], references if generate else [], hypotheses,
                      time.perf_counter() - start, signatures)


def measured_metrics(cfg: "PlannerConfig") -> list[str]:
    """The metrics a final run reports under this config (what plans can be compared on)."""
    return (["chrf", "bleu", *HELDOUT_METRICS] + ([SPBLEU] if wants_spbleu(cfg) else [])
            + (["comet"] if cfg.train.comet_checkpoint else []))

