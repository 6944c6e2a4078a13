"""Reading a CSV table a user wrote, without pandas' silent repairs.

pandas renames a repeated header (`chrf`, `chrf` → `chrf`, `chrf.1`) and, when every row has more fields
than the header, turns the first column into the index, shifting every value one column to the left.
Both read a wrong table without a word; here both are a `pandas.errors.ParserError`, which every reader
already turns into a `UserError` naming the file.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd


def read_csv(path: str | Path, **kwargs) -> pd.DataFrame:
    """`pandas.read_csv(path, **kwargs)` that refuses repeated column names and rows longer than the header."""
    encoding = kwargs.get("encoding")
    header = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False, encoding=encoding,
                         skipinitialspace=True)
    names = [str(v).strip() for v in header.iloc[0]] if len(header) else []
    repeated = sorted({n for n in names if n and names.count(n) > 1})  # blank names are pandas' `Unnamed: i`
    if repeated:
        raise pd.errors.ParserError(f"the header names the column(s) {', '.join(map(repr, repeated))} more than once")
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.ParserWarning)
        try:
            return pd.read_csv(path, index_col=False, **kwargs)
        except pd.errors.ParserWarning:
            raise pd.errors.ParserError(
                f"some rows have more fields than the header's {len(names)} (a trailing comma, or an unquoted comma "
                "inside a value?)"
            ) from None
