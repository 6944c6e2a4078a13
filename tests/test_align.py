"""The contrastive alignment term and the alignment analysis: math against known truths, the loss as
`train_model` calls it, gradient flow, the cross-lingual instruction format and the output files."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch

from core.config import config_from_dict
from core.errors import UserError
from trainers.align import (
    COLUMNS,
    AlignmentLoss,
    AlignmentRow,
    alignment_loss,
    alignment_rows,
    distinct_pairs,
    encode_sentences,
    info_nce,
    layer_alignment,
    pool,
    read_alignment,
    resolve_layer,
    write_alignment,
)
from trainers.data import Pair
from trainers.model import build_model, train_tokenizer
from trainers.prompts import CROSS_LINGUAL_CUE, RESPONSE_MARKER, coit_examples, cross_lingual_examples
from trainers.train import collate, encode_examples

PAIRS = [
    Pair("Save the document", "Dokument speichern"),
    Pair("Open a file", "Eine Datei öffnen"),
    Pair("Insert a table", "Tabelle einfügen"),
    Pair("Delete the selected rows", "Ausgewählte Zeilen löschen"),
    Pair("Print the current page", "Aktuelle Seite drucken"),
    Pair("Close the window", "Fenster schließen"),
]


def tiny_config(**overrides):
    body = {
        "languages": ["de"],
        "model": {"hidden_size": 64, "layers": 2, "heads": 4, "context_length": 64, "threads": 1},
        "train": {"objective": "coit+align"},
        "align": {"weight": 1.0, "layer": -1},
    }
    for section, values in overrides.items():
        body[section] = {**body.get(section, {}), **values}
    return config_from_dict(body)


@pytest.fixture(scope="module")
def tokenizer():
    torch.set_num_threads(1)
    texts = [s for p in PAIRS for s in (p.source, p.target)] * 3
    return train_tokenizer(texts, 400)


def batch_of(tokenizer, examples):
    encoded, _ = encode_examples(tokenizer, examples, 64)
    return collate(encoded, examples, tokenizer.pad_token_id)


# ------------------------------------------------------------------------------------------ InfoNCE


def direct_info_nce(a: list[list[float]], p: list[list[float]], tau: float) -> float:
    """−(1/N) Σ_i log( exp(cos(a_i,p_i)/τ) / Σ_j exp(cos(a_i,p_j)/τ) ), written out with scalars."""
    def cos(u, v):
        return sum(x * y for x, y in zip(u, v)) / (math.sqrt(sum(x * x for x in u)) * math.sqrt(sum(y * y for y in v)))

    total = 0.0
    for i, ai in enumerate(a):
        logits = [cos(ai, pj) / tau for pj in p]
        total -= logits[i] - math.log(sum(math.exp(z) for z in logits))
    return total / len(a)


def test_info_nce_matches_a_direct_computation_on_a_hand_made_batch():
    a = [[1.0, 0.0, 0.5], [0.2, 1.0, -0.3], [-0.4, 0.1, 1.0], [0.3, -0.8, 0.2]]
    p = [[0.9, 0.1, 0.4], [0.0, 1.2, 0.1], [-0.2, -0.3, 0.8], [1.0, 0.5, -0.5]]
    for tau in (0.05, 0.5, 1.0):
        got = info_nce(torch.tensor(a), torch.tensor(p), tau).item()
        assert got == pytest.approx(direct_info_nce(a, p, tau), rel=1e-5)
    # Symmetric: the mean of both directions; X→English swaps the roles of the two sets.
    both = info_nce(torch.tensor(a), torch.tensor(p), 0.1, symmetric=True).item()
    expected = 0.5 * (direct_info_nce(a, p, 0.1) + direct_info_nce(p, a, 0.1))
    assert both == pytest.approx(expected, rel=1e-5)


def test_info_nce_closed_form_for_orthonormal_pairs():
    # cos(a_i, p_i) = 1 and cos(a_i, p_j) = 0: loss = log(1 + (N−1)·e^(−1/τ)), scale-invariant.
    n, tau = 5, 0.2
    a = torch.eye(n) * 3.0
    assert info_nce(a, torch.eye(n), tau).item() == pytest.approx(math.log(1 + (n - 1) * math.exp(-1 / tau)), rel=1e-6)
    # Identical representations for all sentences carry no information: loss = log N.
    same = torch.ones(n, 4)
    assert info_nce(same, same, tau).item() == pytest.approx(math.log(n), rel=1e-6)


def test_info_nce_rejects_bad_shapes_and_temperature():
    with pytest.raises(ValueError):
        info_nce(torch.ones(3, 2), torch.ones(4, 2), 0.05)
    with pytest.raises(ValueError):
        info_nce(torch.ones(3, 2), torch.ones(3, 2), 0.0)


# ------------------------------------------------------------------------------------------ pooling


def test_pool_mean_and_last_use_only_masked_positions():
    hidden = torch.tensor([[[1.0, 0.0], [2.0, 4.0], [4.0, 8.0], [9.0, 9.0]],
                           [[5.0, 5.0], [3.0, 1.0], [7.0, 7.0], [7.0, 7.0]]])
    mask = torch.tensor([[0, 1, 1, 0], [0, 1, 0, 0]], dtype=torch.bool)  # position 0 = BOS, trailing = pad
    assert pool(hidden, mask, "mean").tolist() == [[3.0, 6.0], [3.0, 1.0]]
    assert pool(hidden, mask, "last").tolist() == [[4.0, 8.0], [3.0, 1.0]]
    with pytest.raises(ValueError):
        pool(hidden, mask, "max")


def test_encode_sentences_pools_the_sentence_not_bos_or_padding(tokenizer):
    batch = encode_sentences(tokenizer, ["Save the document", "Open"], 64)
    ids = batch.input_ids
    assert (ids[:, 0] == tokenizer.bos_token_id).all()  # the model sees BOS, as in training
    assert not batch.pool_mask[:, 0].any()
    lengths = batch.attention_mask.sum(1)
    assert batch.pool_mask.sum(1).tolist() == (lengths - 1).tolist()
    assert not (batch.pool_mask & (batch.attention_mask == 0)).any()
    assert ids[1, lengths[1]:].eq(tokenizer.pad_token_id).all()


# ------------------------------------------------------------------------------------ layer analysis


def test_layer_alignment_on_known_geometry():
    # Orthonormal sentences, each translation equal to its sentence: cos 1 vs 0, perfect retrieval.
    e = torch.eye(4)
    perfect = layer_alignment(e, e * 2.0)
    assert (perfect.cos_true, perfect.cos_random) == (pytest.approx(1.0), pytest.approx(0.0))
    assert (perfect.retrieval_en_x, perfect.retrieval_x_en) == (1.0, 1.0)
    # Translations shifted by one: every nearest neighbour is wrong.
    shifted = layer_alignment(e, e.roll(1, dims=0))
    assert (shifted.cos_true, shifted.retrieval_en_x, shifted.retrieval_x_en) == (0.0, 0.0, 0.0)
    assert shifted.cos_random == pytest.approx(4 / 12)  # the four 1s now lie among the 12 off-diagonal cells
    # Worked by hand: s1 is closer to t0 (0.995) than to t1 (0.856), so en→x finds 2 of 3; every
    # translation's nearest sentence is its own (t1: s0 0.8, s1 0.856, s2 0.6), so x→en finds 3 of 3.
    s = torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0]])
    t = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    got = layer_alignment(s, t)
    r = math.sqrt(1.01)
    assert (got.retrieval_en_x, got.retrieval_x_en) == (pytest.approx(2 / 3), 1.0)
    assert got.cos_true == pytest.approx((1 + 0.86 / r + 1) / 3)
    assert got.cos_random == pytest.approx((0.8 + 0.0 + 1 / r + 0.1 / r + 0.0 + 0.6) / 6)
    with pytest.raises(ValueError):
        layer_alignment(torch.ones(1, 2), torch.ones(1, 2))


def test_distinct_pairs_drops_repeated_sides_case_insensitively():
    pairs = [Pair("Open", "Öffnen"), Pair("open", "Aufmachen"), Pair("Close", "öffnen"), Pair("Close", "Schließen")]
    assert distinct_pairs(pairs + pairs) == [Pair("Open", "Öffnen"), Pair("Close", "Schließen")]


def test_resolve_layer_counts_embeddings_as_zero_and_names_the_key():
    assert [resolve_layer(k, 2) for k in (0, 1, 2, -1, -3)] == [0, 1, 2, 2, 0]
    for bad in (3, -4):
        with pytest.raises(UserError, match="align.layer"):
            resolve_layer(bad, 2)


# ------------------------------------------------------------------------------------ the training term


def test_factory_is_off_unless_the_objective_asks_for_it(tokenizer):
    assert alignment_loss(tiny_config(train={"objective": "coit"}), tokenizer) is None
    assert alignment_loss(tiny_config(align={"weight": 0.0}), tokenizer) is None
    loss = alignment_loss(tiny_config(align={"weight": 0.3, "layer": 1, "pooling": "last", "temperature": 0.1,
                                             "symmetric": True}), tokenizer)
    assert isinstance(loss, AlignmentLoss)
    assert (loss.weight, loss.layer, loss.pooling, loss.temperature, loss.symmetric, loss.max_length) == (
        0.3, 1, "last", 0.1, True, 64)


def test_loss_is_weighted_info_nce_over_the_distinct_pairs_of_the_batch(tokenizer):
    cfg = tiny_config(align={"weight": 0.5, "layer": 1})
    model = build_model(cfg, tokenizer, seed=0)
    loss = alignment_loss(cfg, tokenizer)
    # Translation, reverse and cross-lingual examples of the same pairs: each pair counts once.
    examples = coit_examples(PAIRS[:4], "German", seed=0, reverse=True, answer_in_language=True)
    assert len(examples) == 16
    got = loss(model, batch_of(tokenizer, examples))

    sentences = encode_sentences(tokenizer, [p.source for p in PAIRS[:4]] + [p.target for p in PAIRS[:4]], 64)
    states = model(input_ids=sentences.input_ids, attention_mask=sentences.attention_mask,
                   output_hidden_states=True).hidden_states
    pooled = pool(states[1], sentences.pool_mask, "mean")
    assert got.item() == pytest.approx(0.5 * info_nce(pooled[:4], pooled[4:], 0.05).item(), rel=1e-5)


def test_batch_without_two_pairs_adds_nothing(tokenizer):
    cfg = tiny_config()
    model = build_model(cfg, tokenizer, seed=0)
    examples = coit_examples(PAIRS[:1], "German", seed=0, reverse=True)  # one pair, two directions
    assert alignment_loss(cfg, tokenizer)(model, batch_of(tokenizer, examples)).item() == 0.0


def test_gradients_flow_to_the_layers_below_the_aligned_layer_only(tokenizer):
    cfg = tiny_config(align={"layer": 1})  # hidden state 1 = output of the first decoder layer
    model = build_model(cfg, tokenizer, seed=0)
    alignment_loss(cfg, tokenizer)(model, batch_of(tokenizer, coit_examples(PAIRS, "German", seed=0))).backward()

    def grad_norm(module):
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        return sum(float(g.norm()) for g in grads)

    inner = model.model
    assert grad_norm(inner.embed_tokens) > 0
    assert grad_norm(inner.layers[0]) > 0
    assert all(grad_norm(m) > 0 for m in (inner.layers[0].self_attn, inner.layers[0].mlp))
    # Nothing above the aligned layer takes part in the term.
    assert grad_norm(inner.layers[1]) == 0 and grad_norm(inner.norm) == 0


# ----------------------------------------------------------------------------- cross-lingual format


def test_cross_lingual_examples_ask_for_the_other_language():
    examples = cross_lingual_examples(PAIRS[:2], "German", reverse=True)
    assert [e.kind for e in examples] == ["crosslingual"] * 4
    first, back = examples[0], examples[2]
    assert first.prompt.endswith(f"Save the document\n{CROSS_LINGUAL_CUE.format(language='German')}{RESPONSE_MARKER}")
    assert "Translate" not in first.prompt and first.response == "Dokument speichern" and first.pair == PAIRS[0]
    assert back.prompt.endswith(f"Dokument speichern\nAnswer in English:{RESPONSE_MARKER}")
    assert back.response == "Save the document"
    # Switched on through coit_examples (train.cross_lingual_instructions), one per pair and direction.
    assert sum(e.kind == "crosslingual" for e in coit_examples(PAIRS, "German", 0, answer_in_language=True)) == 6
    assert not any(e.kind == "crosslingual" for e in coit_examples(PAIRS, "German", 0))


# ------------------------------------------------------------------------------------- analysis output


def test_alignment_rows_cover_every_layer_and_are_deterministic(tokenizer):
    cfg = tiny_config()
    rows = alignment_rows(build_model(cfg, tokenizer, seed=3), tokenizer, PAIRS, "de", "before", "mean", 64)
    assert [r.layer for r in rows] == [0, 1, 2] and {r.stage for r in rows} == {"before"}
    assert alignment_rows(build_model(cfg, tokenizer, seed=3), tokenizer, PAIRS, "de", "before", "mean", 64) == rows
    # Batching (and so padding) does not change the representations beyond float rounding.
    small = alignment_rows(build_model(cfg, tokenizer, seed=3), tokenizer, PAIRS, "de", "before", "mean", 64, 4)
    assert [r.cos_true for r in small] == pytest.approx([r.cos_true for r in rows], abs=1e-5)
    for r in rows:
        assert -1 <= r.cos_random <= 1 and -1 <= r.cos_true <= 1
        assert 0 <= r.retrieval_en_x <= 1 and 0 <= r.retrieval_x_en <= 1
    with pytest.raises(UserError, match="at least 2"):
        alignment_rows(build_model(cfg, tokenizer, seed=3), tokenizer, PAIRS[:1], "de", "before")


def test_write_alignment_has_exactly_the_contract_columns(tmp_path):
    rows = [AlignmentRow("before", "de", 0, 0.5, 0.1, 0.25, 0.5), AlignmentRow("after", "de", 1, 0.9, 0.2, 1.0, 0.75)]
    csv_path, json_path = write_alignment(rows, tmp_path / "alignment", {"pooling": "mean"})
    with csv_path.open(newline="") as f:
        assert next(csv.reader(f)) == list(COLUMNS) == [
            "stage", "language", "layer", "cos_true", "cos_random", "retrieval_en_x", "retrieval_x_en"]
    assert read_alignment(csv_path) == rows
    body = json.loads(json_path.read_text())
    assert body["pooling"] == "mean" and body["columns"] == list(COLUMNS) and len(body["rows"]) == 2
    assert not list((tmp_path / "alignment").glob("*.tmp"))
