"""Read raw files with explicit schemas: every source column arrives as a string.

- CSV: the header names the columns; the schema is all ``string`` (no inference), options from
  ``ingest.csv_options``.
- JSON lines: each line is parsed as ``map<string,string>``; a line that is not a JSON object gives
  a null map (``malformed`` = true). Scalars keep their JSON text (``5``, ``true``, ``1.5``).
- Parquet: the file's own schema, each column cast to string.
- JSON arrays (the files of a Spotify export): each file is one JSON array; every element is a record
  (``row_pos`` its index), parsed as ``map<string,string>`` like a JSON line. An element that is not an
  object is ``malformed``; so is a file that is not an array (one record: its first 1,000 characters).

Every reader returns ``DataFrame[source_file string, row_pos long, raw_record string, malformed boolean,
<source columns> string]``; ``raw_record`` is the line (JSON), the element as compact JSON (JSON arrays) or
the row as JSON (CSV, Parquet). The JSON readers also give ``source_path`` (the file's local path), and
:func:`read_json_arrays` ``read_detail`` (why a record is malformed).
"""
from __future__ import annotations

import csv
import glob
import logging
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from hitcast.errors import InputContractError

log = logging.getLogger(__name__)

EXTENSIONS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".ndjson": "json", ".parquet": "parquet"}
META = ["source_file", "row_pos", "raw_record", "malformed"]


def blank(c: Column) -> Column:
    """True where a source column (a string) is NULL or only whitespace."""
    return c.isNull() | (F.trim(c) == "")


def as_long(c: str) -> Column:
    """A source column's text as a ``bigint`` (``"1.0"`` -> 1); NULL where it is not a number."""
    return F.expr(f"try_cast(try_cast(trim(`{c}`) as double) as bigint)")


def list_files(location: str | Path, fmt: str = "auto") -> list[tuple[Path, str]]:
    """Input files at ``location`` (a file, a folder or a glob), sorted by name, with their format.

    Hidden files and names starting with ``_`` are skipped. With ``fmt = "auto"`` the format comes
    from the extension (:data:`EXTENSIONS`); files of unknown extension are skipped with a warning.

    Raises
    ------
    InputContractError
        For an unknown ``fmt``.
    """
    if fmt not in ("auto", "csv", "json", "parquet"):
        raise InputContractError(f"unknown input format {fmt!r} for {location} (auto, csv, json, parquet)")
    loc = Path(location)
    if loc.is_dir():
        paths = [p for p in loc.rglob("*") if p.is_file()]
    elif loc.is_file():
        paths = [loc]
    else:
        paths = [Path(p) for p in glob.glob(str(loc)) if Path(p).is_file()]
    out = []
    for p in sorted(paths, key=lambda q: (q.name, str(q))):
        if p.name.startswith((".", "_")):
            continue
        kind = EXTENSIONS.get(p.suffix.lower()) if fmt == "auto" else fmt
        if kind is None:
            log.warning("skipping %s: unknown extension (set the *_format option)", p)
            continue
        out.append((p, kind))
    return out


def _csv_header(path: Path, options: dict[str, str]) -> list[str]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        row = next(csv.reader(fh, delimiter=options.get("delimiter", options.get("sep", ",")),
                              quotechar=options.get("quote", '"')), [])
    return [c.strip() for c in row]


def read_csv(spark: SparkSession, path: Path, options: dict[str, str], names: list[str] | None = None) -> DataFrame:
    """One CSV file with an all-string schema from its header (or, for a file without one, from ``names``)."""
    cols = list(names) if names else _csv_header(path, options)
    if not cols:
        raise InputContractError(f"{path}: empty CSV file (no header)")
    schema = StructType([StructField(c, StringType()) for c in cols])
    header = "false" if names else "true"
    df = spark.read.options(**{**options, "header": header, "mode": "PERMISSIVE"}).schema(schema).csv(str(path))
    return df.select(F.lit(path.name).alias("source_file"), F.monotonically_increasing_id().alias("row_pos"),
                     F.to_json(F.struct(*[F.col(f"`{c}`") for c in cols])).alias("raw_record"),
                     F.lit(False).alias("malformed"), *[F.col(f"`{c}`") for c in cols])


def file_path() -> Column:
    """The local path of the row's file (Spark's ``_metadata.file_path`` is a URI: ``file:/a%20b/x.json``)."""
    uri = F.replace(F.col("_metadata.file_path"), F.lit("+"), F.lit("%2B"))   # a literal '+' stays '+'
    return F.regexp_replace(F.url_decode(uri), "^file:/*", "/")


def read_json_lines(spark: SparkSession, paths: list[Path], columns: list[str] | None = None) -> DataFrame:
    """JSON lines files; ``columns`` names the keys to extract (default: every key seen)."""
    raw = (spark.read.text([str(p) for p in paths])
           .select(F.col("_metadata.file_name").alias("source_file"), file_path().alias("source_path"),
                   F.monotonically_increasing_id().alias("row_pos"), F.col("value").alias("raw_record"))
           .where(F.trim("raw_record") != "")
           .withColumn("_m", F.from_json("raw_record", "map<string,string>")))
    if columns is None:
        keys = raw.select(F.explode(F.map_keys("_m")).alias("k")).distinct().collect()
        columns = sorted(r["k"] for r in keys)
    return raw.select("source_file", "source_path", "row_pos", "raw_record", F.col("_m").isNull().alias("malformed"),
                      *[F.col("_m").getItem(c).alias(c) for c in columns])


def read_json_arrays(spark: SparkSession, paths: list[Path], columns: list[str]) -> DataFrame:
    """Files that each hold one JSON array of objects; ``columns`` names the keys to extract.

    A whole file is one string in memory while it is split (a Spotify export file is 10-15 MB).
    """
    files = (spark.read.text([str(p) for p in paths], wholetext=True)
             .select(F.col("_metadata.file_name").alias("source_file"), file_path().alias("source_path"),
                     F.from_json("value", "array<string>").alias("_a"),
                     F.substring("value", 1, 1000).alias("_head")))
    elements = files.select("source_file", "source_path", "_head", F.col("_a").isNull().alias("_not_array"),
                            F.posexplode(F.coalesce("_a", F.array(F.lit(None).cast("string"))))
                            .alias("row_pos", "_e"))
    parsed = (elements.withColumn("raw_record", F.when(F.col("_not_array"), F.col("_head")).otherwise(F.col("_e")))
              .withColumn("_m", F.when(~F.col("_not_array"), F.from_json("_e", "map<string,string>"))))
    detail = (F.when(F.col("_not_array"), F.lit("the file is not a JSON array"))
              .when(F.col("_m").isNull(), F.lit("element is not a JSON object")))
    return parsed.select("source_file", "source_path", F.col("row_pos").cast("long"), "raw_record",
                         F.col("_m").isNull().alias("malformed"), detail.alias("read_detail"),
                         *[F.col("_m").getItem(c).alias(c) for c in columns])


def read_parquet(spark: SparkSession, path: Path) -> DataFrame:
    """One Parquet file, its columns cast to string."""
    df = spark.read.parquet(str(path))
    cols = df.columns
    return df.select(F.lit(path.name).alias("source_file"), F.monotonically_increasing_id().alias("row_pos"),
                     F.to_json(F.struct(*[F.col(f"`{c}`") for c in cols])).alias("raw_record"),
                     F.lit(False).alias("malformed"), *[F.col(f"`{c}`").cast("string").alias(c) for c in cols])


def read_any(spark: SparkSession, path: Path, *, fmt: str, csv_options: dict[str, str],
             columns: list[str] | None = None) -> DataFrame:
    """Dispatch on ``fmt`` (csv | json | parquet) for one file."""
    if fmt == "csv":
        return read_csv(spark, path, csv_options)
    if fmt == "json":
        return read_json_lines(spark, [path], columns)
    return read_parquet(spark, path)


def apply_mapping(df: DataFrame, mapping: dict[str, str], derived: dict[str, str]) -> DataFrame:
    """Add ``derived`` columns (SQL over source columns), then rename ``mapping`` source -> contract.

    Source columns that a mapping renames away are dropped if the contract name already exists.
    """
    for name, sql in derived.items():
        df = df.withColumn(name, F.expr(sql).cast("string"))
    for src, dst in mapping.items():
        if src in df.columns and src != dst:
            if dst in df.columns:
                df = df.drop(dst)
            df = df.withColumnRenamed(src, dst)
    return df
