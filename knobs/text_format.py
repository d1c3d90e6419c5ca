"""RETURNN's config formats other than Python (config.py:Config.load_file), loaded the way RETURNN loads them.

RETURNN reads a file as Python only when its stripped content starts with `#!` or its name ends in `.py`; as
JSON when it starts with `{`; everything else in the old line-based text format (`key value`, `#` comments, a
value with commas is a list). So a Python config without `#!` is *text*: RETURNN does not complain, it reads
`learning_rate = 0.1` as the string `"= 0.1"`. Text values live in `Config.dict`; code that reads a key with
`typed_value` does not see them (it gets its default).

Runs in the loader subprocess (`knobs.worker`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from knobs.exceptions import describe

# Keys that RETURNN's TF engine reads with `typed_value` only: a text-format value is not seen there.
TYPED_ONLY: dict[str, tuple[str, str]] = {  # key -> (what RETURNN uses instead, where it reads the key)
    "batch_size": ("batch_size 1", "tf/engine.py:Engine.init_train_from_config"),
    "max_pad_size": ("no max_pad_size", "tf/engine.py:Engine.init_train_from_config"),
    "preload_from_files": ("nothing preloaded", "tf/engine.py:Engine.init_train_from_config"),
    "optimizer": ("the legacy optimizer flags", "tf/updater.py:Updater._create_default_optimizer"),
    "tf_session_opts": ("default session options", "tf/engine.py:Engine._make_tf_session"),
}


class ConfigFormatError(Exception):
    """The file loads in none of RETURNN's formats (the message names the error of each)."""


def config_format(path: Path, text: str) -> str:
    """RETURNN's format detection: "py", "json" or "text"."""
    stripped = text.strip()
    if stripped.startswith("#!") or path.name.endswith(".py"):
        return "py"
    if stripped.startswith("{"):
        return "json"
    return "text"


def warning(code: str, message: str, advice: str) -> dict:
    return {"code": code, "message": message, "advice": advice}


def text_value(words: list[str]) -> Any:
    """A text-format value as RETURNN's typed readers (`int`, `float`, `bool`, `list`) see it."""
    def one(word: str) -> Any:
        if word.lower() in ("true", "false"):
            return word.lower() == "true"
        for kind in (int, float):
            try:
                return kind(word)
            except ValueError:
                pass
        return word

    values = [one(w) for w in words]
    return values[0] if len(values) == 1 else values


def _python_error(path: Path, text: str) -> str | None:
    """Why the text is no Python program (None: it compiles)."""
    try:
        compile(text, str(path), "exec")
    except SyntaxError as exc:
        return describe(exc)
    return None


def load_non_python(config: Any, path: Path, text: str, fmt: str) -> list[dict]:
    """Load a JSON or text-format file into `config` as RETURNN does; returns the warnings. A file that fails
    is also tried as Python, and the error names both."""
    name = "JSON" if fmt == "json" else "line-based text format"
    try:
        config.load_file(str(path))
    except Exception as error:  # RETURNN's AssertionError, json's ValueError, ...
        python_error = _python_error(path, text)
        as_python = f"as Python: {python_error}" if python_error else \
            "as Python it compiles: add '#!rnn.py' as its first line"
        raise ConfigFormatError(f"no '#!' first line, so RETURNN reads it as {name} and fails: {describe(error)}; "
                                f"{as_python}") from None
    if fmt == "json":
        return []
    for key, words in config.dict.items():
        config.typed_dict.setdefault(key, text_value(words))
    return [warning("text-format", "no '#!' first line: RETURNN reads this file in its line-based text format "
                    "(`key value` lines)", "nothing to do if intended; a Python config needs '#!rnn.py' as its "
                    "first line"), *_text_traps(config.dict)]


def _text_traps(text_values: dict[str, list[str]]) -> list[dict]:
    """What RETURNN silently reads differently from what the file says."""
    found = []
    python_like = sorted(k for k, words in text_values.items() if words and str(words[0]).startswith("="))
    if python_like:
        found.append(warning(
            "text-format-python-like", f"{', '.join(python_like[:4])} read as text: the value of "
            f"{python_like[0]} is the string '{','.join(text_values[python_like[0]])}' (a `key = value` line)",
            "add '#!rnn.py' as the first line: this is a Python config"))
    for key in sorted(set(text_values) & set(TYPED_ONLY)):
        instead, where = TYPED_ONLY[key]
        found.append(warning(
            "text-format-untyped", f"{key} {','.join(text_values[key])}: RETURNN reads {key} with typed_value "
            f"({where}), which does not see text-format values, so it trains with {instead}",
            f"write the config in Python ('#!rnn.py') or JSON so that {key} takes effect"))
    return found
