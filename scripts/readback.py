#!/usr/bin/env python3
"""readback.py OUT — read every deid dataset under OUT/datasets with the ML
team's tools (pyarrow, pandas, polars, duckdb), each the way its users do
(Hive partitioning on the dataset directory), and print one JSON document:

  {"tools": {"pyarrow": "26.0.1", ...},
   "datasets": {"<dataset>": {"<tool>": {
       "rows": N,
       "columns": {"<column>": {"type": "<the tool's own type name>",
                                "kind": "timestamp_us_utc|int32|int64|double|string|date|other"}},
       "partition_columns": ["dt", ...],
       "digest": "<sha256 of the canonical values>"}}}}

The digest covers the dataset's own columns (not the partition columns the
reader adds from the directory names): each row is rendered column by column
in name order as name=value with timestamps as integer microseconds since the
epoch (UTC), integers in decimal, doubles as the hex of their IEEE-754 bits,
strings as they are and nulls (and pandas' NaN, which deid never writes) as
null; the rows are sorted and hashed. cmd/deid/readback_test.go computes the
same digest from deid's own reader and compares.

With --readme README.md it also runs the README's reading recipes exactly as
printed: the lines of the fenced block that follows the README's
"<!-- reading recipes -->" marker, executed in a folder where `out` is OUT,
once as printed (campaign_metrics) and once with the dataset name replaced by
each other dataset. It adds {"recipes": {"<dataset>": {"<variable>": rows}}}:
the rows each recipe's result holds (a pyarrow Table, a pandas or polars
DataFrame, a DuckDB relation), or {"error": "..."}.

OUT may be an output on object storage, s3://bucket/prefix, with
--endpoint URL for an S3-compatible store (credentials and region from the
standard AWS environment): then pyarrow reads it through its own S3
filesystem (pyarrow.fs.S3FileSystem), and DuckDB reads the same pyarrow
dataset, since DuckDB's own S3 reader is the httpfs extension, which DuckDB
downloads on first use and a machine without internet access cannot get.

Run it with the venv scripts/pyenv.sh makes: .cache/venv/bin/python
scripts/readback.py OUT [--readme README.md] [--endpoint URL].
"""
import datetime
import hashlib
import json
import math
import os
import struct
import sys
import tempfile

import duckdb
import pandas
import polars
import pyarrow
import pyarrow.dataset
import pyarrow.fs

PARTITION_KEYS = {"dt", "hour", "minute"}
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def canon(value):
    """Renders one value canonically (see the module's doc)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "b:" + str(value).lower()
    if hasattr(value, "to_pydatetime"):  # pandas.Timestamp
        value = value.to_pydatetime()
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            return "naive:" + value.isoformat()
        delta = value - EPOCH
        return "t:%d" % (delta.days * 86_400_000_000 + delta.seconds * 1_000_000 + delta.microseconds)
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        value = value.item()
    if isinstance(value, int):
        return "i:%d" % value
    if isinstance(value, float):
        if math.isnan(value):
            return "null"
        return "f:" + struct.pack(">d", value).hex()
    if isinstance(value, str):
        return "s:" + value
    return "other:" + repr(value)


def digest(columns, rows):
    """Hashes rows (sequences of values in the order of columns)."""
    names = sorted(c for c in columns if c not in PARTITION_KEYS)
    index = {c: i for i, c in enumerate(columns)}
    lines = sorted("\x1f".join("%s=%s" % (n, canon(r[index[n]])) for n in names) for r in rows)
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def arrow_kind(t):
    if pyarrow.types.is_dictionary(t):
        t = t.value_type
    if pyarrow.types.is_timestamp(t):
        return "timestamp_us_utc" if t.unit == "us" and t.tz in ("UTC", "+00:00") else "other"
    for name, pred in (("int32", pyarrow.types.is_int32), ("int64", pyarrow.types.is_int64),
                       ("double", pyarrow.types.is_float64), ("date", pyarrow.types.is_date)):
        if pred(t):
            return name
    if pyarrow.types.is_string(t) or pyarrow.types.is_large_string(t):
        return "string"
    return "other"


def with_pyarrow(path):
    ds = pyarrow.dataset.dataset(path, format="parquet", partitioning="hive")
    table = ds.to_table()
    cols = table.column_names
    rows = list(zip(*(table.column(c).to_pylist() for c in cols))) if table.num_rows else []
    return table.num_rows, {c: (str(table.schema.field(c).type), arrow_kind(table.schema.field(c).type)) for c in cols}, cols, rows


def pandas_kind(dtype):
    s = str(dtype)
    if isinstance(dtype, pandas.CategoricalDtype):
        cats = dtype.categories.dtype
        return "string" if cats == object or str(cats) in ("str", "string") else "other"
    if s.startswith("datetime64[us, UTC]"):
        return "timestamp_us_utc"
    return {"int32": "int32", "int64": "int64", "float64": "double", "str": "string", "string": "string",
            "object": "string"}.get(s, "other")


def with_pandas(path):
    df = pandas.read_parquet(path)
    cols = list(df.columns)
    rows = list(df.itertuples(index=False, name=None))
    return len(df), {c: (str(df[c].dtype), pandas_kind(df[c].dtype)) for c in cols}, cols, rows


def polars_kind(dtype):
    if isinstance(dtype, polars.Datetime):
        return "timestamp_us_utc" if dtype.time_unit == "us" and dtype.time_zone == "UTC" else "other"
    for name, t in (("int32", polars.Int32), ("int64", polars.Int64), ("double", polars.Float64),
                    ("string", polars.String), ("string", polars.Categorical), ("date", polars.Date)):
        if dtype == t:
            return name
    if isinstance(dtype, (polars.Categorical, polars.Enum)):
        return "string"
    return "other"


def with_polars(path):
    df = polars.scan_parquet(os.path.join(path, "**", "*.parquet"), hive_partitioning=True).collect()
    cols = df.columns
    rows = df.rows()
    return df.height, {c: (str(df.schema[c]), polars_kind(df.schema[c])) for c in cols}, cols, rows


def duckdb_kind(t):
    return {"TIMESTAMP WITH TIME ZONE": "timestamp_us_utc", "INTEGER": "int32", "BIGINT": "int64",
            "DOUBLE": "double", "VARCHAR": "string", "DATE": "date"}.get(t, "other")


def with_duckdb(path):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    glob = os.path.join(path, "**", "*.parquet").replace("'", "''")
    query = "SELECT * FROM read_parquet('%s', hive_partitioning = true)" % glob
    types = {name: typ for name, typ, *_ in con.sql("DESCRIBE " + query).fetchall()}
    table = con.sql(query).to_arrow_table()
    cols = table.column_names
    rows = list(zip(*(table.column(c).to_pylist() for c in cols))) if table.num_rows else []
    return table.num_rows, {c: (types[c], duckdb_kind(types[c])) for c in cols}, cols, rows


def s3_filesystem(endpoint):
    """pyarrow's S3 filesystem, at endpoint ("http://127.0.0.1:19000") when
    given, path-style; credentials and region from the AWS environment."""
    if not endpoint:
        return pyarrow.fs.S3FileSystem()
    scheme, _, host = endpoint.partition("://")
    return pyarrow.fs.S3FileSystem(endpoint_override=host, scheme=scheme,
                                   region=os.environ.get("AWS_REGION", "us-east-1"))


def s3_dataset(fs, path):
    return pyarrow.dataset.dataset(path, format="parquet", partitioning="hive", filesystem=fs,
                                   exclude_invalid_files=False)


def with_pyarrow_s3(fs, path):
    table = s3_dataset(fs, path).to_table()
    cols = table.column_names
    rows = list(zip(*(table.column(c).to_pylist() for c in cols))) if table.num_rows else []
    return table.num_rows, {c: (str(table.schema.field(c).type), arrow_kind(table.schema.field(c).type)) for c in cols}, cols, rows


def with_duckdb_s3(fs, path):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("ds", s3_dataset(fs, path))
    types = {name: typ for name, typ, *_ in con.sql("DESCRIBE SELECT * FROM ds").fetchall()}
    table = con.sql("SELECT * FROM ds").to_arrow_table()
    cols = table.column_names
    rows = list(zip(*(table.column(c).to_pylist() for c in cols))) if table.num_rows else []
    return table.num_rows, {c: (types[c], duckdb_kind(types[c])) for c in cols}, cols, rows


def main_s3(out, endpoint):
    """main for an output on object storage: pyarrow and DuckDB."""
    fs = s3_filesystem(endpoint)
    root = out[len("s3://"):].rstrip("/") + "/datasets"
    result = {"tools": {"pyarrow": pyarrow.__version__, "duckdb": duckdb.__version__}, "datasets": {}}
    for info in fs.get_file_info(pyarrow.fs.FileSelector(root)):
        name = info.base_name
        if info.type != pyarrow.fs.FileType.Directory or name.startswith((".", "_")):
            continue
        per = result["datasets"][name] = {}
        for tool, read in (("pyarrow", with_pyarrow_s3), ("duckdb", with_duckdb_s3)):
            try:
                n, types, cols, rows = read(fs, info.path)
            except Exception as e:  # report, and let the test fail on it
                per[tool] = {"error": "%s: %s" % (type(e).__name__, e)}
                continue
            per[tool] = {
                "rows": n,
                "columns": {c: {"type": t, "kind": k} for c, (t, k) in types.items() if c not in PARTITION_KEYS},
                "partition_columns": sorted(c for c in cols if c in PARTITION_KEYS),
                "digest": digest(cols, rows),
            }
    json.dump(result, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


RECIPES_MARKER = "<!-- reading recipes -->"
RECIPES_DATASET = "campaign_metrics"


def readme_recipes(readme):
    """Returns the lines of the fenced block after RECIPES_MARKER."""
    text = open(readme, encoding="utf-8").read()
    at = text.find(RECIPES_MARKER)
    if at < 0:
        raise SystemExit("readback.py: %s has no %s block" % (readme, RECIPES_MARKER))
    lines = text[at:].splitlines()[1:]
    if not lines or not lines[0].startswith("```"):
        raise SystemExit("readback.py: %s: a fenced block must follow %s" % (readme, RECIPES_MARKER))
    block = []
    for line in lines[1:]:
        if line.startswith("```"):
            return block
        block.append(line)
    raise SystemExit("readback.py: %s: the recipes block is not closed" % readme)


def result_rows(value):
    """Counts the rows of what a recipe read."""
    if isinstance(value, pyarrow.Table):
        return value.num_rows
    if isinstance(value, (pandas.DataFrame, polars.DataFrame)):
        return len(value)
    if isinstance(value, duckdb.DuckDBPyRelation):
        return value.aggregate("count(*)").fetchall()[0][0]
    return None


def run_recipes(out, lines, dataset):
    """Runs the recipe lines in a folder where `out` points to OUT, with
    RECIPES_DATASET replaced by dataset; returns rows per variable."""
    code = "\n".join(lines).replace(RECIPES_DATASET, dataset)
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as d:
        os.symlink(os.path.abspath(out), os.path.join(d, "out"))
        os.chdir(d)
        try:
            scope = {}
            exec(compile(code, "README recipes", "exec"), scope)
            # Counted here: a DuckDB relation reads its files only now.
            rows = {}
            for name, value in scope.items():
                n = result_rows(value)
                if n is not None and not name.startswith("_"):
                    rows[name] = n
            return rows
        except Exception as e:  # report, and let the test fail on it
            return {"error": "%s: %s" % (type(e).__name__, e)}
        finally:
            os.chdir(cwd)


TOOLS = {"pyarrow": with_pyarrow, "pandas": with_pandas, "polars": with_polars, "duckdb": with_duckdb}


def main(out, readme=None):
    root = os.path.join(out, "datasets")
    result = {"tools": {"pyarrow": pyarrow.__version__, "pandas": pandas.__version__,
                        "polars": polars.__version__, "duckdb": duckdb.__version__},
              "datasets": {}}
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name)
        if not os.path.isdir(path) or name.startswith((".", "_")):
            continue
        per = result["datasets"][name] = {}
        for tool, read in TOOLS.items():
            try:
                n, types, cols, rows = read(path)
            except Exception as e:  # report, and let the test fail on it
                per[tool] = {"error": "%s: %s" % (type(e).__name__, e)}
                continue
            per[tool] = {
                "rows": n,
                "columns": {c: {"type": t, "kind": k} for c, (t, k) in types.items() if c not in PARTITION_KEYS},
                "partition_columns": sorted(c for c in cols if c in PARTITION_KEYS),
                "digest": digest(cols, rows),
            }
    if readme:
        lines = readme_recipes(readme)
        result["recipes"] = {name: run_recipes(out, lines, name) for name in result["datasets"]}
    json.dump(result, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0].startswith("s3://") and len(args) in (1, 3) and (len(args) == 1 or args[1] == "--endpoint"):
        main_s3(args[0], args[2] if len(args) == 3 else None)
    elif len(args) == 3 and args[1] == "--readme":
        main(args[0], args[2])
    elif len(args) == 1:
        main(args[0])
    else:
        sys.exit("usage: readback.py OUT [--readme README.md] | readback.py s3://BUCKET/PREFIX [--endpoint URL]")
