"""CoIT examples: cross-lingual instruction-tuning prompts built from English→X translation pairs.

Every example is an instruction prompt in three short sections and a response:

    ### Instruction:
    Translate the following sentences from English to German.
    ### Input:
    Save the document
    ### Response:
    Dokument speichern</s>

The loss is taken on the response tokens and the EOS token only (see `trainers.train`), so the model
learns to produce translations, not to reproduce the instructions. Training cycles through a dozen
paraphrased instructions, so the model learns the task rather than one wording; evaluation always uses
the first one (`EVAL_TEMPLATE`), which training also contains, so every run is scored on the same prompt.

The section headers are short on purpose: they are paid on every training example, and the `tiny`
tokenizer keeps each one a single token (`SECTION_MARKERS`).

The same examples can be laid out in a pretrained chat model's own format instead
(`train.prompt_format: chat`, `PromptFormat`): the instruction and its input become one user turn of the
tokenizer's chat template, with a short (by default empty) system turn, and the response is the
assistant turn, ended by the template's end-of-turn token — the token the model already stops at.

Optional extras: X→English translation (`reverse=True`), general instruction data answered in X
(`GeneralTask`, one JSONL file per language) mixed in at a ratio of the translation examples, and
cross-lingual instruction following (`answer_in_language=True`, see `cross_lingual_examples`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from core.errors import UserError

if TYPE_CHECKING:  # only for annotations: prompts need nothing from the loader at run time
    from trainers.data import Pair

INSTRUCTION_MARKER = "### Instruction:\n"
INPUT_MARKER = "\n### Input:\n"
RESPONSE_MARKER = "\n### Response:\n"
SECTION_MARKERS = (INSTRUCTION_MARKER, INPUT_MARKER, RESPONSE_MARKER)

# Paraphrased translation instructions written for this project. `{src}` and `{tgt}` are language names,
# so the same templates serve English→X and X→English. The first one is the evaluation template.
TRANSLATION_TEMPLATES: tuple[str, ...] = (
    "Translate the following sentences from {src} to {tgt}.",
    "Translate this text from {src} into {tgt}.",
    "Render the following {src} text in {tgt}.",
    "Please translate the {src} input into {tgt}.",
    "Give the {tgt} translation of the following {src} text.",
    "Convert this {src} sentence into {tgt}.",
    "Provide a {tgt} version of the {src} text below.",
    "Translate from {src} to {tgt}.",
    "Express the following {src} text in {tgt}.",
    "Rewrite the {src} input in {tgt}.",
    "How would you say this {src} text in {tgt}?",
    "Write the {src} sentence below in {tgt}.",
)
EVAL_TEMPLATE = TRANSLATION_TEMPLATES[0]
SOURCE_LANGUAGE_NAME = "English"
ANSWER_IN_LANGUAGE = "Answer in {language}."
CROSS_LINGUAL_CUE = "Answer in {language}:"


@dataclass(frozen=True)
class Example:
    """One training or evaluation example: the model reads `prompt` and learns to write `response`.

    `prompt` is the instruction-format text; `instruction` and `input` are its two parts, kept so that
    another layout (the chat template) can be rendered from the same example (`PromptFormat`)."""

    prompt: str
    response: str
    kind: str = "translate"  # "translate" (English→X), "reverse" (X→English), "crosslingual" or "general"
    pair: "Pair | None" = None  # the translation pair behind a translation example (for pair-based losses)
    instruction: str | None = None  # None: only `prompt` is known (it then serves as the whole request)
    input: str = ""

    @property
    def request(self) -> str:
        """The instruction and its input as one message (a chat model's user turn)."""
        if self.instruction is None:
            return self.prompt
        return f"{self.instruction}\n{self.input}" if self.input else self.instruction


def make_example(instruction: str, input_text: str, response: str, kind: str = "translate",
                 pair: "Pair | None" = None) -> Example:
    return Example(format_prompt(instruction, input_text), response, kind, pair, instruction, input_text)


@dataclass(frozen=True)
class GeneralTask:
    """A general instruction answered in the target language (one line of `{language}.jsonl`)."""

    instruction: str
    output: str
    input: str = ""


def format_prompt(instruction: str, input_text: str = "") -> str:
    """The prompt for an instruction; the Input section is left out when there is no input."""
    body = INSTRUCTION_MARKER + instruction
    if input_text:
        body += INPUT_MARKER + input_text
    return body + RESPONSE_MARKER


def translation_instruction(template_index: int, src: str, tgt: str) -> str:
    return TRANSLATION_TEMPLATES[template_index % len(TRANSLATION_TEMPLATES)].format(src=src, tgt=tgt)


def eval_prompt(source: str, language_name: str) -> str:
    """The fixed English→X prompt every evaluation uses."""
    return format_prompt(EVAL_TEMPLATE.format(src=SOURCE_LANGUAGE_NAME, tgt=language_name), source)


def eval_example(pair: "Pair", language_name: str) -> Example:
    """The fixed evaluation example of a test pair (the `EVAL_TEMPLATE` instruction)."""
    instruction = EVAL_TEMPLATE.format(src=SOURCE_LANGUAGE_NAME, tgt=language_name)
    return make_example(instruction, pair.source, pair.target, "translate", pair)


def coit_examples(
    pairs: Sequence["Pair"],
    language_name: str,
    seed: int,
    reverse: bool = False,
    general: Sequence[GeneralTask] = (),
    general_ratio: float = 0.0,
    answer_in_language: bool = False,
) -> list[Example]:
    """The CoIT training examples of one language, in a fixed order (the trainer shuffles).

    Translation example i uses template (seed + i) mod 12, so the templates are used equally often and
    a different seed pairs sentences with different wordings. `reverse` adds the X→English example of
    every pair. `general_ratio` adds ratio × len(pairs) (rounded) general tasks, taken in file order and
    cycled when the file is shorter (whole passes first, so small ratios use each task at most once).
    `answer_in_language` appends "Answer in {language}." to every general task and adds the
    cross-lingual instruction example of every pair (`cross_lingual_examples`).
    """
    if general_ratio < 0:
        raise ValueError("general_ratio must be non-negative")
    out: list[Example] = []
    for i, pair in enumerate(pairs):
        k = seed + i
        instruction = translation_instruction(k, SOURCE_LANGUAGE_NAME, language_name)
        out.append(make_example(instruction, pair.source, pair.target, "translate", pair))
        if reverse:
            # Offset by half the table so a pair's two directions are worded differently.
            back = translation_instruction(k + len(TRANSLATION_TEMPLATES) // 2, language_name, SOURCE_LANGUAGE_NAME)
            out.append(make_example(back, pair.target, pair.source, "reverse", pair))
    if answer_in_language:
        out.extend(cross_lingual_examples(pairs, language_name, reverse))
    n_general = n_general_examples(general_ratio, len(pairs))
    if n_general and not general:
        raise UserError(
            f"data.general_ratio is {general_ratio} but there are no general tasks for {language_name}.",
            "Set data.general_dir to a directory holding {language}.jsonl files, or set data.general_ratio to 0.",
        )
    for j in range(n_general):
        task = general[j % len(general)]
        instruction = task.instruction
        if answer_in_language:
            instruction = f"{instruction} {ANSWER_IN_LANGUAGE.format(language=language_name)}"
        out.append(make_example(instruction, task.input, task.output, "general"))
    return out


def cross_lingual_examples(pairs: Sequence["Pair"], language_name: str, reverse: bool = False) -> list[Example]:
    """Cross-lingual instruction following built from parallel data alone: the instruction is one side
    of a pair, in its own language, followed by the cue "Answer in {language}:" naming the other
    language, and the answer is the other side.

        ### Instruction:
        Save the document
        Answer in German:
        ### Response:
        Dokument speichern</s>

    Parallel data certifies only one answer to a prompt in another language, its translation, so that is
    the answer; what differs from the translation templates is that no instruction says "translate". The
    cue is the only signal of the answer language, so the model learns to answer in the language it is
    asked for rather than the language of the prompt — the skill (and the usual failure) of cross-lingual
    instruction following. Many corpus sentences are commands or questions (the demo corpus is user
    interface text), which makes the prompt an instruction in the literal sense. English prompts are
    answered in X; `reverse` adds X prompts answered in English.
    """
    cue = CROSS_LINGUAL_CUE.format(language=language_name)
    out = [make_example(f"{p.source}\n{cue}", "", p.target, "crosslingual", p) for p in pairs]
    if reverse:
        cue = CROSS_LINGUAL_CUE.format(language=SOURCE_LANGUAGE_NAME)
        out.extend(make_example(f"{p.target}\n{cue}", "", p.source, "crosslingual", p) for p in pairs)
    return out


def general_tasks_path(general_dir: str | Path, language: str) -> Path:
    return Path(general_dir) / f"{language}.jsonl"


def load_general_tasks(general_dir: str | Path, language: str) -> list[GeneralTask]:
    """Read `{general_dir}/{language}.jsonl`: one `{"instruction", "input"?, "output"}` object per line."""
    path = general_tasks_path(general_dir, language)
    if not path.is_file():
        raise UserError(
            f"General instruction file {path} does not exist (data.general_dir, language {language}).",
            f"Add {path.name} with one JSON object per line holding 'instruction', optional 'input' and "
            "'output' (answered in that language), or set data.general_ratio to 0.",
        )
    from trainers.sources import read_text, text_lines  # the corpus reader's decoding (pandas: imported late)

    tasks = []
    for lineno, line in enumerate(text_lines(read_text(path, "general instructions")), start=1):
        if not line.strip():
            continue
        tasks.append(_parse_general_line(line, path, lineno))
    if not tasks:
        raise UserError(f"General instruction file {path} is empty.", "Add tasks or set data.general_ratio to 0.")
    return tasks


def check_general_tasks(data_cfg, languages) -> None:
    """Read every language's general instruction file when the config mixes them in (UserError if one
    is missing or malformed): before a sweep, not in each of its runs."""
    if data_cfg.general_dir and data_cfg.general_ratio > 0:
        for language in languages:
            load_general_tasks(data_cfg.general_dir, language)


def _parse_general_line(line: str, path: Path, lineno: int) -> GeneralTask:
    where = f"{path} line {lineno}"
    fix = 'Each line must be a JSON object like {"instruction": "...", "input": "", "output": "..."}.'
    try:
        row = json.loads(line)
    except json.JSONDecodeError as err:
        raise UserError(f"{where} is not valid JSON ({err.msg}).", fix) from None
    if not isinstance(row, dict):
        raise UserError(f"{where} is a JSON {type(row).__name__}, not an object.", fix)
    values = {}
    for key, required in (("instruction", True), ("output", True), ("input", False)):
        value = row.get(key, None if required else "")
        if value is None or not isinstance(value, str) or (required and not value.strip()):
            raise UserError(f"{where}: '{key}' must be a non-empty string (got {value!r}).", fix)
        try:
            value.encode("utf-8")  # a lone surrogate escape (\ud800) is not text: the tokenizer would crash
        except UnicodeEncodeError:
            raise UserError(f"{where}: '{key}' holds a lone UTF-16 surrogate escape, which is not text.",
                            "Fix the escape, or write the character itself.") from None
        values[key] = value.strip()
    return GeneralTask(instruction=values["instruction"], output=values["output"], input=values["input"])


def templates_fingerprint() -> str:
    """Changes whenever the prompt format changes (part of the tokenizer cache key)."""
    import hashlib

    text = json.dumps([SECTION_MARKERS, TRANSLATION_TEMPLATES, ANSWER_IN_LANGUAGE])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def n_general_examples(general_ratio: float, n_pairs: int) -> int:
    return int(math.floor(general_ratio * n_pairs + 0.5))


# ------------------------------------------------------------------------------------ prompt formats

PROMPT_FORMATS = ("instruction", "chat")
_PROBE = "coit-planner response probe"  # stands in for a response when locating the end-of-turn token


class PromptFormat:
    """How examples become token ids for one tokenizer: each prompt's ids, and the id that ends a response.

    - `instruction`: `Example.prompt` tokenized with the tokenizer's own special tokens (the `tiny` BOS);
      a response ends with EOS.
    - `chat`: the tokenizer's chat template applied to [system, user = `Example.request`] with the
      assistant header appended (`add_generation_prompt`). The rendered text already holds its special
      tokens, so none are added. A response ends with the token that closes an assistant turn in that
      template (`<|im_end|>` in ChatML), which is also where generation stops. `system_prompt` None
      leaves the system turn out, so a template that has a default one inserts it (SmolLM2's costs ~20
      tokens on every example).
    """

    def __init__(self, tokenizer, style: str = "instruction", system_prompt: str | None = ""):
        if style not in PROMPT_FORMATS:
            raise ValueError(f"prompt format must be one of {PROMPT_FORMATS}, got {style!r}")
        self.tokenizer, self.style, self.system_prompt = tokenizer, style, system_prompt
        if style == "chat" and not getattr(tokenizer, "chat_template", None):
            raise UserError(
                "train.prompt_format is 'chat' but this model's tokenizer has no chat template (the tiny "
                "model never has one).",
                "Set train.prompt_format: instruction, or use a chat model such as model.name: smollm2-135m.",
            )
        self.end_id = self._end_of_turn() if style == "chat" else tokenizer.eos_token_id

    @classmethod
    def from_config(cls, cfg, tokenizer) -> "PromptFormat":
        return cls(tokenizer, cfg.train.prompt_format, cfg.train.system_prompt)

    def _messages(self, request: str) -> list[dict]:
        system = [] if self.system_prompt is None else [{"role": "system", "content": self.system_prompt}]
        return system + [{"role": "user", "content": request}]

    def text(self, example: Example) -> str:
        if self.style == "instruction":
            return example.prompt
        return self.tokenizer.apply_chat_template(
            self._messages(example.request), tokenize=False, add_generation_prompt=True
        )

    def prompt_ids(self, examples: Sequence[Example]) -> list[list[int]]:
        texts = [self.text(e) for e in examples]
        return self.tokenizer(texts, add_special_tokens=self.style == "instruction")["input_ids"]

    @property
    def stop_ids(self) -> list[int]:
        """Generation ends at any of these: EOS, and the end-of-turn token when it differs."""
        return sorted({self.tokenizer.eos_token_id, self.end_id})

    def _end_of_turn(self) -> int:
        """The first token the template writes after an assistant message, if it is a special token
        (ChatML `<|im_end|>`, Llama 3 `<|eot_id|>`, ...); otherwise EOS."""
        tok = self.tokenizer
        messages = self._messages("x") + [{"role": "assistant", "content": _PROBE}]
        text = tok.apply_chat_template(messages, tokenize=False)
        tail = text[text.rindex(_PROBE) + len(_PROBE):] if _PROBE in text else ""
        ids = tok(tail, add_special_tokens=False)["input_ids"] if tail else []
        special = set(tok.all_special_ids) | {i for i, t in tok.added_tokens_decoder.items() if t.special}
        return ids[0] if ids and ids[0] in special else tok.eos_token_id
