"""The parallel-data loaders and `planner data stats` against real corpora of kinds the first tests had
not tried: other encodings and line ends, invisible characters, scripts without spaces, files mixing
the table forms row by row, long fields, odd `datasets` splits, and sizes the sweep's mixtures need.
Valid but unusual data must load; malformed data must be refused naming the file and line."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import unicodedata

import pytest
import yaml

from core.config import DataConfig
from core.errors import UserError
from planner.cli import main
from trainers.data import Pair, build_language_data, corpus_languages, load_language, read_pairs
from trainers.evaluate import score_translations
from trainers.prompts import load_general_tasks

from test_data import english, german  # the sentences the data tests use

N = 12
DE = [Pair(english(i), german(i)) for i in range(N)]


def cfg(path, **overrides) -> DataConfig:
    return DataConfig(source=str(path), test_size=3, **overrides)


def jsonl(records) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def wide_lines(pairs=DE) -> str:
    return jsonl({"en": p.source, "de": p.target} for p in pairs)


def refused(path, message, language="de", fmt="auto", **overrides) -> str:
    with pytest.raises(UserError) as caught:
        read_pairs(path, fmt, language, cfg(path, **overrides))
    text = " ".join(str(caught.value).split())
    assert message in text, text
    return text


# ------------------------------------------------------------------------------------------------
# Encodings and line ends


@pytest.mark.parametrize("name", ["pairs.jsonl", "pairs.tsv", "pairs.csv", "moses"])
def test_utf8_with_a_byte_order_mark_reads_like_utf8(tmp_path, name):
    # Windows editors save "UTF-8" with a BOM: JSONL was refused, TSV/CSV lost their first column name
    # ("\ufeffen"), and a Moses file kept the mark inside its first sentence.
    bodies = {
        "pairs.jsonl": wide_lines(),
        "pairs.tsv": "en\tde\n" + "".join(f"{p.source}\t{p.target}\n" for p in DE),
        "pairs.csv": "en,de\n" + "".join(f'"{p.source}","{p.target}"\n' for p in DE),
    }
    if name == "moses":
        path = tmp_path / "moses"
        path.mkdir()
        (path / "train.en").write_text("\ufeff" + "".join(p.source + "\n" for p in DE), encoding="utf-8")
        (path / "train.de").write_text("\ufeff" + "".join(p.target + "\n" for p in DE), encoding="utf-8")
    else:
        path = tmp_path / name
        path.write_text("\ufeff" + bodies[name], encoding="utf-8")
    assert read_pairs(path, "auto", "de", cfg(path)) == DE


def test_crlf_line_ends_and_a_last_line_without_newline_read_the_same(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(wide_lines().replace("\n", "\r\n").rstrip("\r\n").encode())
    assert read_pairs(path, "auto", "de", cfg(path)) == DE
    tsv = tmp_path / "pairs.tsv"
    tsv.write_bytes(("en\tde\r\n" + "".join(f"{p.source}\t{p.target}\r\n" for p in DE)).rstrip("\r\n").encode())
    assert read_pairs(tsv, "auto", "de", cfg(tsv)) == DE


def test_utf16_latin1_and_nul_bytes_are_refused_naming_the_line(tmp_path):
    utf16 = tmp_path / "utf16.jsonl"
    utf16.write_bytes(wide_lines().encode("utf-16"))
    refused(utf16, "is UTF-16 text (it starts with a UTF-16 byte-order mark), not UTF-8")

    latin1 = tmp_path / "latin1.tsv"
    latin1.write_bytes(("en\tde\n" + "".join(f"{p.source}\t{p.target}\n" for p in DE)).encode()
                       + "Café au lait.\tMilchkaffee im Café.\n".encode("latin-1"))
    refused(latin1, f"line {N + 2} is not UTF-8: byte 0xe9")

    nul = tmp_path / "nul.csv"
    nul.write_text("en,de\nHello there.,Hallo du.\nBroken\x00line.,Kaputt.\n", encoding="utf-8")
    refused(nul, "line 3 holds a NUL byte")


def test_moses_files_in_utf16_without_a_bom_are_refused_not_read_as_garbage(tmp_path):
    # Without a BOM, UTF-16-LE ASCII text is "valid" UTF-8 with a NUL after every letter: the pairs
    # used to load as 'S\x00e\x00n\x00…' (and one extra pair from the trailing NUL).
    path = tmp_path / "moses"
    path.mkdir()
    (path / "train.en").write_bytes("".join(p.source + "\n" for p in DE).encode("utf-16-le"))
    (path / "train.de").write_bytes("".join(p.target + "\n" for p in DE).encode("utf-16-le"))
    refused(path, "train.en line 1 holds a NUL byte: the file is binary or UTF-16")


def test_lone_surrogate_escape_in_json_is_refused_not_a_crash(tmp_path):
    # json.loads accepts "\ud800" alone; pandas then crashed with UnicodeEncodeError (a traceback).
    path = tmp_path / "pairs.jsonl"
    path.write_text(wide_lines() + '{"en": "Broken \\ud800 escape.", "de": "Kaputt."}\n', encoding="utf-8")
    refused(path, f"line {N + 1} holds a lone UTF-16 surrogate escape")
    # A proper pair of escapes is one character (an emoji) and loads.
    path.write_text(wide_lines() + '{"en": "Smile \\ud83d\\ude00.", "de": "Lächeln \\ud83d\\ude00."}\n', encoding="utf-8")
    assert read_pairs(path, "auto", "de", cfg(path))[-1] == Pair("Smile \U0001f600.", "Lächeln \U0001f600.")


def test_a_json_key_given_twice_is_refused(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text(wide_lines() + '{"en": "Close.", "de": "Schließen.", "de": "Zumachen."}\n', encoding="utf-8")
    refused(path, f"line {N + 1} gives the key 'de' twice")


def test_fields_longer_than_the_csv_module_limit_are_dropped_as_too_long_not_refused(tmp_path):
    # csv's default field limit is 131,072 characters: one long sentence refused the whole file.
    for name, sep in (("pairs.tsv", "\t"), ("pairs.csv", ",")):
        path = tmp_path / name
        path.write_text(f"en{sep}de\n" + "".join(f"{p.source}{sep}{p.target}\n" for p in DE)
                        + "x" * 200_000 + f"{sep}Lang.\n", encoding="utf-8")
        data = load_language(cfg(path), "de")
        assert data.dropped["too long"] == 1 and sorted(data.test + data.train, key=DE.index) == DE


def test_tsv_without_a_header_is_refused_saying_the_first_line_is_the_header(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("".join(f"{p.source}\t{p.target}\n" for p in DE), encoding="utf-8")
    refused(path, "The first line of the file is its header")


# ------------------------------------------------------------------------------------------------
# Table forms mixed row by row, odd values


def test_jsonl_mixing_wide_translation_and_long_rows_reads_every_row(tmp_path):
    # A wide key and a `translation` object in one file: the translation rows were dropped without a
    # word ("existing columns win" dropped the whole expanded column); a long row beside wide ones made
    # the language unreadable ("no de pairs in column 'de'").
    path = tmp_path / "pairs.jsonl"
    records = [{"en": p.source, "de": p.target} for p in DE[:4]]
    records += [{"translation": {"en": p.source, "de": p.target}} for p in DE[4:8]]
    records += [{"source": p.source, "target": p.target, "language": "de"} for p in DE[8:]]
    records += [{"source": "Only French.", "target": "Seulement français.", "language": "fr"}]
    path.write_text(jsonl(records), encoding="utf-8")
    assert read_pairs(path, "auto", "de", cfg(path)) == DE
    assert read_pairs(path, "auto", "fr", cfg(path)) == [Pair("Only French.", "Seulement français.")]
    assert corpus_languages(cfg(path)) == ["de", "fr"]

    path.write_text(jsonl(records[:8]), encoding="utf-8")  # wide + translation only
    assert read_pairs(path, "auto", "de", cfg(path)) == DE[:8]


def test_rows_the_long_form_cannot_place_are_refused_or_counted_not_dropped_silently(tmp_path):
    long = [{"source": p.source, "target": p.target, "language": "de"} for p in DE]
    path = tmp_path / "pairs.jsonl"
    path.write_text(jsonl(long + [{"source": "a b", "target": "c d", "language": 7}]), encoding="utf-8")
    refused(path, f"line {N + 1}: 'language' is int 7, not a language code")
    path.write_text(jsonl(long + [{"source": "a b", "target": "c d"}]), encoding="utf-8")
    refused(path, f"line {N + 1} has a 'target' value but no 'language'")
    path.write_text(jsonl(long + [{"source": "Lost its target.", "language": "de"}]), encoding="utf-8")
    assert load_language(cfg(path), "de").dropped["empty"] == 1
    path.write_text(wide_lines() + jsonl([{"translation": "Hallo."}]), encoding="utf-8")
    refused(path, f"line {N + 1}: 'translation' is str 'Hallo.', not an object")


def test_parquet_translation_column_of_arrow_maps(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    maps = pa.array([[("en", p.source), ("de", p.target)] for p in DE], pa.map_(pa.string(), pa.string()))
    pq.write_table(pa.table({"translation": maps}), tmp_path / "pairs.parquet")
    assert read_pairs(tmp_path / "pairs.parquet", "auto", "de", cfg(tmp_path / "pairs.parquet")) == DE


def test_hf_dataset_dict_with_odd_split_names_and_a_split_per_form(tmp_path):
    datasets = pytest.importorskip("datasets")
    translation = datasets.Dataset.from_list([{"translation": {"en": p.source, "de": p.target}} for p in DE[:6]])
    wide = datasets.Dataset.from_dict({"en": [p.source for p in DE[6:]], "de": [p.target for p in DE[6:]],
                                       "fr": [f"Phrase {i}." for i in range(6, N)]})
    path = tmp_path / "hf"
    datasets.DatasetDict({"train.2024-v1": translation, "Dev_Set": wide}).save_to_disk(str(path))
    assert sorted(read_pairs(path, "auto", "de", cfg(path)), key=DE.index) == DE
    assert len(read_pairs(path, "auto", "fr", cfg(path))) == 6  # a language in one split only

    numbers = datasets.Dataset.from_dict({"en": ["One."], "de": [1]})
    datasets.DatasetDict({"a": wide, "b": numbers}).save_to_disk(str(tmp_path / "typed"))
    refused(tmp_path / "typed", "row 7: 'de' is int 1, not text")


def test_language_codes_in_other_spellings_load_when_spelled_as_in_the_data(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text(jsonl({"en": p.source, "pt_BR": p.target, "zh-Hant": p.target} for p in DE), encoding="utf-8")
    assert corpus_languages(cfg(path)) == ["pt_BR", "zh-Hant"]
    assert read_pairs(path, "auto", "zh-Hant", cfg(path)) == DE
    assert load_language(cfg(path), "pt_BR").name == "Brazilian Portuguese"
    refused(path, "codes must be spelled as in the data", language="pt-br")


# ------------------------------------------------------------------------------------------------
# Text content: normalisation, invisible characters, the leak-free split


def test_nfc_and_nfd_spellings_of_one_pair_are_one_pair():
    nfd = [Pair(unicodedata.normalize("NFD", p.source + " café"), unicodedata.normalize("NFD", p.target + " Café"))
           for p in DE]
    nfc = [Pair(p.source + " café", p.target + " Café") for p in DE]
    data = build_language_data("de", "German", nfc + nfd, test_size=3, split_seed=0, max_chars=300)
    assert data.dropped["duplicate"] == N and len(data.train) + len(data.test) == N


@pytest.mark.parametrize(
    "variant",
    [
        "Open the \u200bfile.",  # a zero-width space
        "Open the fi\u00adle.",  # a soft hyphen
        "\ufeffOpen the file.",  # a stray byte-order mark inside the text
        "\u200eOpen the file.\u200f",  # direction marks
        "Ｏｐｅｎ the file.",  # full-width letters
    ],
)
def test_invisible_and_full_width_variants_of_a_test_sentence_never_reach_training(variant):
    # The overlap check compared casefolded text only: a variant that looks identical stayed in the
    # training pool while the sentence was in the test split.
    pairs = [Pair(f"Filler sentence {i}.", f"Füllsatz {i}.") for i in range(8)]
    pairs += [Pair("Open the file.", "Öffne die Datei."), Pair(variant, "Datei öffnen!")]
    for seed in range(40):
        data = build_language_data("de", "German", pairs, test_size=1, split_seed=seed, max_chars=300)
        if data.test[0].target in ("Öffne die Datei.", "Datei öffnen!"):
            assert not {"Öffne die Datei.", "Datei öffnen!"} & {p.target for p in data.train}, seed
            assert data.dropped["overlaps test"] == 1
            return
    pytest.fail("no seed put the sentence in the test split")


def test_a_side_holding_only_invisible_characters_is_empty():
    pairs = DE + [Pair("\u200b", "Leer."), Pair("Empty.", "\u200e \u200f"), Pair("Emoji 👨\u200d👩\u200d👧.", "Emoji 👨\u200d👩\u200d👧.")]
    data = build_language_data("de", "German", pairs, test_size=3, split_seed=0, max_chars=300)
    assert data.dropped["empty"] == 2
    assert Pair("Emoji 👨\u200d👩\u200d👧.", "Emoji 👨\u200d👩\u200d👧.") in data.train + data.test  # ZWJ kept


def test_the_split_is_the_same_under_every_python_hash_seed(tmp_path):
    path = tmp_path / "pairs.jsonl"
    records = [{"en": english(i), "de": german(i), "ar": f"جملة رقم {i}", "th": f"ประโยคที่{i}"} for i in range(30)]
    records += [{"translation": {"en": "Mixed in.", "de": "Eingemischt."}}]
    path.write_text(jsonl(records), encoding="utf-8")
    code = (
        "import json, sys; from core.config import DataConfig; from trainers.data import load_language, "
        "data_fingerprint; c = DataConfig(source=sys.argv[1], test_size=4); "
        "print(json.dumps({l: data_fingerprint(load_language(c, l)) for l in ['ar', 'de', 'th']}))"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    outputs = {
        subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True, cwd=root,
                       env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("0", "1", "12345")
    }
    assert len(outputs) == 1, outputs


def test_chrf_of_empty_hypotheses_and_scripts_without_spaces():
    assert score_translations(["", ""], ["Hallo Welt.", "Guten Tag."], "de")["chrf"] == 0.0
    for language, text in (("zh", "打开文件并保存文档"), ("ja", "ファイルを開いて保存する"), ("th", "เปิดไฟล์และบันทึกเอกสาร")):
        assert score_translations([text], [text], language)["chrf"] == pytest.approx(100.0)
        assert 0.0 < score_translations([text[: len(text) // 2]], [text], language)["chrf"] < 100.0


def test_general_instruction_files_with_a_bom_or_a_line_separator_in_a_string(tmp_path):
    # The BOM was refused as invalid JSON, and str.splitlines cut a JSON string at a raw U+2028 (valid
    # JSON) into two invalid lines.
    (tmp_path / "de.jsonl").write_text('\ufeff{"instruction": "Nenne drei Farben.", "output": "Rot."}\r\n'
                                       '{"instruction": "Zwei\u2028Zeilen.", "output": "Ja."}\r\n', encoding="utf-8")
    tasks = load_general_tasks(tmp_path, "de")
    assert [t.instruction for t in tasks] == ["Nenne drei Farben.", "Zwei\u2028Zeilen."]
    # A lone surrogate escape crashed the tokenizer in the middle of a run (TypeError); refused up front.
    (tmp_path / "fr.jsonl").write_text('{"instruction": "Dis \\udc00.", "output": "Oui."}\n', encoding="utf-8")
    with pytest.raises(UserError, match="line 1: 'instruction' holds a lone UTF-16 surrogate escape"):
        load_general_tasks(tmp_path, "fr")


# ------------------------------------------------------------------------------------------------
# `planner data stats`


def stats(tmp_path, capsys, records, languages, **sweep) -> tuple[int, str, str]:
    path = tmp_path / "pairs.jsonl"
    path.write_text(jsonl(records), encoding="utf-8")
    config = tmp_path / "planner.yaml"
    config.write_text(yaml.safe_dump({"languages": languages, "data": {"source": str(path), "test_size": 5},
                                      "sweep": {"sizes": [10], **sweep}}, allow_unicode=True), encoding="utf-8")
    code = main(["data", "stats", "--config", str(config)])
    out, err = capsys.readouterr()
    return code, out, " ".join(err.split())


def test_data_stats_on_right_to_left_and_space_free_scripts(tmp_path, capsys):
    texts = {"ar": "افتح الملف رقم {}", "he": "פתח את הקובץ {}", "th": "เปิดไฟล์ที่{}", "zh-Hant": "打開第{}個檔案",
             "ja": "ファイル{}を開く"}
    records = [{"en": f"Open file {i} 👍🏽", **{k: v.format(i) for k, v in texts.items()}} for i in range(40)]
    records.append({"en": "x" * 100_000, "ar": "ي" * 100_000})  # one very long line: dropped as too long
    code, out, err = stats(tmp_path, capsys, records, list(texts))
    assert code == 0, err
    assert "Traditional Chinese" in out and "too long 1" in out and "capacity ok" in out


def test_data_stats_checks_the_pairs_a_mixture_run_takes(tmp_path, capsys):
    # sweep.mixtures trains every language on N pairs: `data stats` said "capacity ok" for a pool the
    # sweep then refused, since it checked sweep.sizes only.
    records = [{"en": english(i), "de": german(i), "fr": f"Phrase {i}."} for i in range(40)]
    code, out, err = stats(tmp_path, capsys, records, ["de", "fr"], mixtures=[50])
    assert code == 2 and "capacity ok" not in out
    assert "de (German) has 35 but needs 50" in err and "sweep.mixtures" in err


def test_refusals_of_data_stats_write_nothing_and_show_no_traceback(tmp_path, capsys):
    records = [{"en": english(i), "de": german(i)} for i in range(40)] + [{"en": "a", "de": "b", "language": ["de"]}]
    before = set(tmp_path.rglob("*"))
    code, out, err = stats(tmp_path, capsys, records, ["de"])
    assert code == 2 and err.startswith("error:") and "Traceback" not in err
    assert re.search(r"pairs\.jsonl line 41: 'language' is list \[", err)
    assert set(tmp_path.rglob("*")) - before == {tmp_path / "pairs.jsonl", tmp_path / "planner.yaml"}


def test_a_gzip_file_damaged_inside_its_stream_is_refused_not_a_traceback(tmp_path):
    """A header that reads but a damaged deflate stream raised zlib.error, which was not caught."""
    import gzip

    body = "".join(json.dumps({"en": english(i), "de": german(i)}) + "\n" for i in range(2000)).encode()
    damaged = bytearray(gzip.compress(body))
    for k in range(200, 260):
        damaged[k] ^= 0xFF
    path = tmp_path / "pairs.jsonl.gz"
    path.write_bytes(bytes(damaged))
    with pytest.raises(UserError, match="cannot be read as compressed"):
        read_pairs(path, "auto", "de", cfg(path))
