"""CSV bytes in and out: encoding detection, header aliases, cell cleaning, formula-injection neutralising."""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import pandas as pd
from pandas.api.types import is_bool_dtype, is_datetime64_any_dtype, is_numeric_dtype

from crm.errors import FieldError, ValidationError, Validator

UTF8 = "utf-8"
UTF8_BOM = "utf-8-sig"
GB18030 = "gb18030"
# Tried in this order: UTF-8 (with or without BOM) first, then GB18030, a superset of GBK (Excel in China).
ENCODINGS = (UTF8_BOM, GB18030)
# Spreadsheets run a cell that starts with one of these as a formula (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
NEUTRALISER = "'"
# A cell that is just a number cannot be a formula, so "-12.5" is written as it is.
PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
DATETIME_FORMATS = (
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%Y年%m月%d日 %H:%M:%S",
    "%Y年%m月%d日 %H:%M",
    "%Y年%m月%d日",
)


@dataclass(frozen=True)
class CsvRow:
    """One data record: its first physical line in the file and its cells by canonical field."""

    line: int
    cells: dict[str, str]


@dataclass(frozen=True)
class CsvTable:
    """A decoded CSV file whose headers were mapped to canonical field names."""

    encoding: str
    fields: tuple[str, ...]
    unknown_headers: tuple[str, ...]
    rows: list[CsvRow]


def decode(data: bytes) -> tuple[str, str]:
    """Return the text and the encoding used: 'utf-8-sig' (BOM), 'utf-8' or 'gb18030'."""
    for encoding in ENCODINGS:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if encoding == UTF8_BOM and not data.startswith(codecs.BOM_UTF8):
            encoding = UTF8
        return text, encoding
    raise ValidationError({"file": FieldError("error.invalid_encoding", {"encodings": ", ".join(ENCODINGS)})})


def normalise_header(header: str) -> str:
    """Return the header as aliases are keyed: trimmed and case-folded."""
    return header.strip().lstrip("\ufeff").strip().casefold()


def read_table(data: bytes, *, aliases: Mapping[str, str]) -> CsvTable:
    """Decode CSV bytes and map each header through `aliases` (normalised header -> field).

    Blank records are skipped; a record's `line` is the physical line it starts on (the header
    is line 1), so multi-line quoted cells do not shift later line numbers.
    """
    text, encoding = decode(data)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None) or []
    columns: list[str | None] = []
    fields: list[str] = []
    unknown: list[str] = []
    for raw in header:
        field = aliases.get(normalise_header(raw))
        if field is None or field in fields:
            columns.append(None)
            if raw.strip():
                unknown.append(raw.strip())
            continue
        columns.append(field)
        fields.append(field)
    rows: list[CsvRow] = []
    next_line = reader.line_num + 1
    for record in reader:
        line, next_line = next_line, reader.line_num + 1
        if not any(cell.strip() for cell in record):
            continue
        cells = {field: cell for field, cell in zip(columns, record, strict=False) if field is not None}
        rows.append(CsvRow(line=line, cells=cells))
    return CsvTable(encoding=encoding, fields=tuple(fields), unknown_headers=tuple(unknown), rows=rows)


def neutralise(value: object) -> object:
    """Prefix a text cell a spreadsheet would run as a formula with an apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES) and not PLAIN_NUMBER.fullmatch(value):
        return NEUTRALISER + value
    return value


def unneutralise(value: str) -> str:
    """Undo `neutralise` so an exported file re-imports to the same values."""
    if value.startswith(NEUTRALISER) and neutralise(value[1:]) == value:
        return value[1:]
    return value


def dataframe_to_csv(df: pd.DataFrame) -> bytes:
    """Return the frame as UTF-8-with-BOM CSV bytes, text cells neutralised against formula injection.

    Numeric columns are written as they are (a negative amount stays a number); in every other
    column a text cell starting with = + - @ (or tab / CR) gets a leading apostrophe.
    """
    out = df.copy()
    for column in out.columns:
        series = out[column]
        if (is_numeric_dtype(series) and not is_bool_dtype(series)) or is_datetime64_any_dtype(series):
            continue
        out[column] = series.map(neutralise)
    out.columns = [str(neutralise(str(column))) for column in out.columns]
    return out.to_csv(index=False, lineterminator="\r\n").encode(UTF8_BOM)


def parse_datetime(text: str) -> datetime | None:
    """Parse ISO, slash or Chinese date(time) text; aware values become naive UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        for fmt in DATETIME_FORMATS:
            try:
                value = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        else:
            return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def parse_date(text: str) -> date | None:
    """Parse date text (a time part, as Excel adds, is ignored)."""
    value = parse_datetime(text)
    return value.date() if value else None


def parse_iso_date(text: str) -> date | None:
    """Parse a YYYY-MM-DD date, or return None."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


@dataclass
class ParsedRow:
    """A CSV row's cleaned cells, the cleanings done and the errors found."""

    line: int
    values: dict[str, str] = field(default_factory=dict)
    cleanings: list[tuple[str, str]] = field(default_factory=list)
    errors: Validator = field(default_factory=Validator)


def clean_choice(value: str, values: tuple[str, ...], chinese: Mapping[str, str]) -> tuple[str | None, str | None]:
    """Return (enum value, cleaning message) for an English or Chinese spelling, or (None, None)."""
    if value in values:
        return value, None
    folded = re.sub(r"[\s\-]+", "_", value.casefold())
    if folded in values:
        return folded, f"'{value}' case-folded to '{folded}'"
    if value in chinese:
        return chinese[value], f"'{value}' mapped to '{chinese[value]}'"
    return None, None


def parse_cells(
    row: CsvRow, *, max_length: Mapping[str, int], choices: Mapping[str, tuple[tuple[str, ...], dict[str, str]]]
) -> ParsedRow:
    """Trim every cell, map enum spellings, and check lengths and choices."""
    parsed = ParsedRow(line=row.line)
    for name, raw in row.cells.items():
        text = unneutralise(raw)
        value = text.strip()
        if not value:
            continue
        if value != text:
            parsed.cleanings.append((name, f"{name}: trimmed whitespace"))
        if name in choices:
            allowed, chinese = choices[name]
            choice, message = clean_choice(value, allowed, chinese)
            if choice is None:
                parsed.errors.add(name, "error.invalid_choice", choices=", ".join(allowed))
            elif message:
                parsed.cleanings.append((name, f"{name}: {message}"))
                value = choice
        limit = max_length.get(name)
        if limit is not None and len(value) > limit:
            parsed.errors.add(name, "error.too_long", max=limit)
        parsed.values[name] = value
    return parsed
