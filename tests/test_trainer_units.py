"""Unit tests of the CoIT trainer's pieces: prompts, tokenizer recipe, batching, the response loss,
evaluation helpers. Fast: toy text and a model of a few thousand parameters."""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.config import PlannerConfig
from core.errors import UserError
from trainers.data import Pair
from trainers.evaluate import bleu_tokenize, clean_output, new_token_budget, score_translations
from trainers.model import build_model, train_tokenizer
from trainers.prompts import (
    EVAL_TEMPLATE,
    SECTION_MARKERS,
    TRANSLATION_TEMPLATES,
    GeneralTask,
    coit_examples,
    eval_prompt,
    format_prompt,
    load_general_tasks,
)
from trainers.train import (
    IGNORE,
    MEGABATCH,
    Batch,
    batch_plan,
    collate,
    encode_examples,
    length_grouped_epoch,
    response_nll,
    steps_for,
    train_model,
)

torch.set_num_threads(1)

PAIRS = [Pair(f"Open file number {i}", f"Datei Nummer {i} öffnen") for i in range(30)]


@pytest.fixture(scope="module")
def toy_tokenizer():
    texts = [t for p in PAIRS for t in (p.source, p.target)] + ["Ελληνικά κείμενο", "中文文本", "हिन्दी पाठ"]
    return train_tokenizer(texts * 3, vocab_size=300)


# ----------------------------------------------------------------------------------------------- prompts


def test_templates_are_distinct_paraphrases_naming_both_languages():
    assert len(set(TRANSLATION_TEMPLATES)) == len(TRANSLATION_TEMPLATES) >= 10
    assert EVAL_TEMPLATE == "Translate the following sentences from {src} to {tgt}."
    for t in TRANSLATION_TEMPLATES:
        text = t.format(src="English", tgt="German")
        assert "English" in text and "German" in text


def test_training_cycles_through_templates_and_evaluation_uses_one():
    n = len(TRANSLATION_TEMPLATES)
    examples = coit_examples(PAIRS[: 2 * n], "German", seed=0)
    used = Counter(next(t for t in TRANSLATION_TEMPLATES if t.format(src="English", tgt="German") in e.prompt)
                   for e in examples)
    assert set(used) == set(TRANSLATION_TEMPLATES) and set(used.values()) == {2}
    # Another seed pairs each sentence with another wording, same pairs and order.
    shifted = coit_examples(PAIRS[: 2 * n], "German", seed=1)
    assert [e.pair for e in shifted] == [e.pair for e in examples]
    assert shifted[0].prompt == examples[1].prompt.replace(PAIRS[1].source, PAIRS[0].source)
    assert eval_prompt("Hello", "German") == format_prompt(EVAL_TEMPLATE.format(src="English", tgt="German"), "Hello")


def test_prompt_sections_and_response():
    ex = coit_examples(PAIRS[:1], "German", seed=0)[0]
    assert ex.prompt == (
        "### Instruction:\nTranslate the following sentences from English to German.\n"
        "### Input:\nOpen file number 0\n### Response:\n"
    )
    assert ex.response == "Datei Nummer 0 öffnen" and ex.kind == "translate" and ex.pair == PAIRS[0]
    assert format_prompt("Say hi.") == "### Instruction:\nSay hi.\n### Response:\n"  # no Input section


def test_reverse_direction_and_general_mix():
    general = [GeneralTask("Name a colour.", "Rot"), GeneralTask("Count to two.", "eins, zwei", input="")]
    ex = coit_examples(PAIRS[:10], "German", seed=0, reverse=True, general=general, general_ratio=0.5,
                       answer_in_language=True)
    kinds = Counter(e.kind for e in ex)
    assert kinds == {"translate": 10, "reverse": 10, "crosslingual": 20, "general": 5}
    rev = next(e for e in ex if e.kind == "reverse")
    assert "from German to English" in rev.prompt or ("German" in rev.prompt and "English" in rev.prompt)
    assert rev.prompt.count(rev.pair.target) == 1 and rev.response == rev.pair.source
    gen = [e for e in ex if e.kind == "general"]
    assert [e.response for e in gen] == ["Rot", "eins, zwei", "Rot", "eins, zwei", "Rot"]  # cycled in order
    assert all(e.prompt.startswith("### Instruction:\n") and "Answer in German." in e.prompt for e in gen)
    with pytest.raises(UserError, match="general_ratio"):
        coit_examples(PAIRS[:10], "German", seed=0, general_ratio=0.5)


def test_general_task_file_errors_name_the_line(tmp_path):
    (tmp_path / "de.jsonl").write_text(
        json.dumps({"instruction": "Name a colour.", "output": "Rot"}) + "\n\n"
        + json.dumps({"instruction": "Hi", "input": "x", "output": ""}) + "\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"de\.jsonl line 3: 'output'"):
        load_general_tasks(tmp_path, "de")
    (tmp_path / "de.jsonl").write_text('{"instruction": "Name a colour.", "output": "Rot"}\n[1]\n', encoding="utf-8")
    with pytest.raises(UserError, match="line 2 is a JSON list"):
        load_general_tasks(tmp_path, "de")
    with pytest.raises(UserError, match="fr.jsonl does not exist"):
        load_general_tasks(tmp_path, "fr")
    (tmp_path / "de.jsonl").write_text('{"instruction": "Name a colour.", "output": "Rot"}\n', encoding="utf-8")
    assert load_general_tasks(tmp_path, "de") == [GeneralTask("Name a colour.", "Rot", "")]


# --------------------------------------------------------------------------------------------- tokenizer


def test_tiny_tokenizer_recipe(toy_tokenizer):
    tok = toy_tokenizer
    for marker in SECTION_MARKERS:  # one token each, paid on every example
        assert len(tok(marker, add_special_tokens=False)["input_ids"]) == 1
    ids = tok("Open file")["input_ids"]
    assert ids[0] == tok.bos_token_id and tok.eos_token_id not in ids
    for text in ["Datei öffnen", "中文文本 and ελληνικά", "unseen: ÆØÅ ✓ 🙂", eval_prompt("Open file 3", "German")]:
        assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text  # byte-level: lossless
    assert {tok.pad_token, tok.bos_token, tok.eos_token} == {"<pad>", "<s>", "</s>"}


def test_encoding_puts_loss_on_response_and_eos_only(toy_tokenizer):
    tok = toy_tokenizer
    examples = coit_examples(PAIRS[:3], "German", seed=0)
    encoded, truncated = encode_examples(tok, examples, max_length=512)
    assert truncated == 0
    batch = collate(encoded, examples, tok.pad_token_id)
    for row, (enc, ex) in enumerate(zip(encoded, examples)):
        labels = batch.labels[row]
        supervised = labels[labels != IGNORE].tolist()
        assert supervised[-1] == tok.eos_token_id
        assert tok.decode(supervised[:-1]) == ex.response
        prompt_ids = tok(ex.prompt)["input_ids"]
        assert list(enc.input_ids[: len(prompt_ids)]) == prompt_ids  # what generation starts from
        assert int(batch.attention_mask[row].sum()) == len(enc)
    # Cut at the context: the response is shortened, and a prompt filling it leaves nothing to learn.
    limit = len(encoded[0]) - 2
    short, truncated = encode_examples(tok, examples, max_length=limit)
    assert truncated == sum(len(e) > limit for e in encoded) >= 1
    assert short[0] is not None and len(short[0]) == limit and short[0].input_ids == encoded[0].input_ids[:limit]
    none, _ = encode_examples(tok, examples, max_length=encoded[0].n_prompt)
    assert none[0] is None


# ----------------------------------------------------------------------------------------------- batching


def test_length_grouped_epoch_covers_every_example_once_with_little_padding():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 120, size=3000).tolist()
    batches = length_grouped_epoch(lengths, 16, np.random.default_rng(1))
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(3000))

    def padding(bs):
        return sum(len(b) * max(lengths[i] for i in b) for b in bs) / sum(lengths)

    random_batches = [list(range(k, min(k + 16, 3000))) for k in range(0, 3000, 16)]
    assert padding(batches) < 1.05 < 1.5 < padding(random_batches)
    # Batch order is shuffled: not sorted by length overall.
    firsts = [lengths[b[0]] for b in batches]
    assert firsts != sorted(firsts, reverse=True)


def test_batch_plan_is_seeded_and_spans_epochs():
    lengths = list(range(1, 101))
    assert steps_for(100, 16, 2.5, None) == 18 and steps_for(100, 16, 10, 7) == 7
    plan = batch_plan(lengths, 16, 18, seed=3)
    assert plan == batch_plan(lengths, 16, 18, seed=3) != batch_plan(lengths, 16, 18, seed=4)
    first_epoch = [i for b in plan[:7] for i in b]
    assert sorted(first_epoch) == list(range(100))  # 7 batches = one full epoch
    assert MEGABATCH * 16 > 100


# ------------------------------------------------------------------------------------------------- loss


def test_response_nll_skipping_logits_matches_full_cross_entropy(toy_tokenizer):
    """Known truth: the NLL of the response tokens computed from the full logits by hand."""
    tok = toy_tokenizer
    cfg = PlannerConfig.model_validate({"model": {"hidden_size": 16, "layers": 1, "heads": 2}})
    model = build_model(cfg, tok, seed=0)
    examples = coit_examples(PAIRS[:5], "German", seed=0)
    encoded, _ = encode_examples(tok, examples, 512)
    batch = collate(encoded, examples, tok.pad_token_id)
    with torch.no_grad():
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        expected = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), batch.labels[:, 1:].reshape(-1),
                                   ignore_index=IGNORE, reduction="sum")
        n_expected = int((batch.labels != IGNORE).sum())
        for keep in (True, False):
            nll, n = response_nll(model, batch, logits_to_keep=keep)
            assert int(n) == n_expected
            assert torch.allclose(nll, expected, rtol=1e-5), (keep, nll, expected)


def test_train_model_decreases_loss_and_calls_extra_loss_with_pairs(toy_tokenizer):
    tok = toy_tokenizer
    cfg = PlannerConfig.model_validate({
        "model": {"hidden_size": 32, "layers": 1, "heads": 2, "context_length": 256},
        "train": {"epochs": 6, "batch_size": 8, "learning_rate": 0.01},
    })
    model = build_model(cfg, tok, seed=0)
    seen: list[Batch] = []

    def extra(m, batch):
        seen.append(batch)
        # A real term depending on the weights: it must reach the optimizer without breaking training.
        return 1e-3 * m.get_input_embeddings().weight.pow(2).mean()

    examples = coit_examples(PAIRS, "German", seed=0)
    stats = train_model(cfg, model, tok, examples, seed=0, progress=False, extra_loss=extra)
    assert stats.steps == 6 * math.ceil(30 / 8) == len(seen) == len(stats.extra_losses) == len(stats.losses)
    assert all(e.pair is not None for b in seen for e in b.examples)
    assert np.mean(stats.losses[-4:]) < 0.5 * np.mean(stats.losses[:4])
    assert stats.examples == 30 and stats.truncated == 0 and stats.epochs == pytest.approx(6.0)
    assert stats.padded_tokens >= stats.tokens > stats.response_tokens


# ------------------------------------------------------------------------------------------- evaluation


def test_scoring_helpers():
    assert bleu_tokenize("zh") == "zh" and bleu_tokenize("zh_TW") == "zh" and bleu_tokenize("ja") == "char"
    assert bleu_tokenize("de") == "13a"
    perfect = score_translations(["Datei öffnen", "Speichern"], ["Datei öffnen", "Speichern"], "de")
    assert perfect["chrf"] == pytest.approx(100.0)
    worse = score_translations(["Datei", "Speicher"], ["Datei öffnen", "Speichern"], "de")
    assert 0 < worse["chrf"] < perfect["chrf"]
    # Character BLEU scores unsegmented Japanese; 13a would see one "word" per sentence.
    ja = score_translations(["ファイルを開く"], ["ファイルを開きます"], "ja")["bleu"]
    assert ja > 0
    assert clean_output(" Datei öffnen\n### Instruction:\nTranslate") == "Datei öffnen"
    assert new_token_budget([10, 20], cap=64, room=100) == 34
    assert new_token_budget([10, 60], cap=64, room=100) == 64
    assert new_token_budget([10, 20], cap=64, room=12) == 12 and new_token_budget([5], 64, room=-3) == 1


def test_bf16_precision_trains_under_autocast(toy_tokenizer):
    tok = toy_tokenizer
    cfg = PlannerConfig.model_validate({
        "model": {"hidden_size": 32, "layers": 1, "heads": 2, "context_length": 256, "precision": "bf16"},
        "train": {"epochs": 4, "batch_size": 8, "learning_rate": 0.01},
    })
    model = build_model(cfg, tok, seed=0)
    dtypes = []
    hook = model.lm_head.register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    stats = train_model(cfg, model, tok, coit_examples(PAIRS, "German", seed=0), seed=0, progress=False)
    hook.remove()
    assert set(dtypes) == {torch.bfloat16} and model.lm_head.weight.dtype == torch.float32  # fp32 master weights
    assert all(math.isfinite(x) for x in stats.losses) and stats.losses[-1] < stats.losses[0]


def test_language_examples_follow_the_config(tmp_path):
    from trainers.coit import language_examples
    from trainers.data import LanguageData

    (tmp_path / "de.jsonl").write_text('{"instruction": "Name a colour.", "output": "Rot"}\n', encoding="utf-8")
    lang = LanguageData("de", "German", train=PAIRS[:20], test=PAIRS[20:], dropped={})
    cfg = PlannerConfig.model_validate({"data": {"general_dir": str(tmp_path), "general_ratio": 0.25},
                                        "train": {"reverse_direction": True}})
    kinds = Counter(e.kind for e in language_examples(cfg, lang, lang.prefix(8), seed=0))
    assert kinds == {"translate": 8, "reverse": 8, "general": 2}
    plain = language_examples(PlannerConfig(), lang, lang.prefix(8), seed=0)
    assert [e.kind for e in plain] == ["translate"] * 8


def test_comet_needs_the_package_and_a_local_checkpoint(tmp_path):
    from trainers.evaluate import comet_score

    with pytest.raises(UserError, match="unbabel-comet|is not a file"):
        comet_score(str(tmp_path / "missing.ckpt"), ["a"], ["b"], ["c"], batch_size=8)
