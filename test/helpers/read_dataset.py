"""Opens one output folder as ONE Parquet dataset in four independent readers.

    python read_dataset.py DIR

Used by a node:test test to check that a sink's output folder opens as a single dataset
in pandas, pyarrow.dataset, DuckDB and Spark, with the same rows and column types, and that
each reader skips the `_`/`.` entries (checkpoints, dead letters, in-progress files).

Prints one JSON object on stdout, keyed by reader ("pandas", "pyarrow", "duckdb", "spark"):
  {"rows": N, "columns": {name: native type}, "types": {name: normalised type},
   "distinct_keys": distinct (source, partition, offset) triples, or null without those columns}
or {"error": "<ExceptionType>: <first line of message>"} if that reader failed. Normalised
types: string, int32, int64, float32, float64, timestamp_utc (instant, tz-aware UTC),
timestamp_naive (no time zone), dictionary, or "other:<native>". Per-reader times go to
stderr. Exits 0 whatever the readers do; 2 on wrong arguments.
"""
import json
import os
import sys
import tempfile
import time
import warnings

KEYS = ['source', 'partition', 'offset']
UTC = {'UTC', 'Etc/UTC', '+00:00', 'Z'}


def arrow_type(t):
    import pyarrow as pa
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return 'string'
    if pa.types.is_timestamp(t):
        return 'timestamp_naive' if t.tz is None else 'timestamp_utc' if t.tz in UTC else f'other:{t}'
    if pa.types.is_dictionary(t):
        return 'dictionary'
    names = {pa.int32(): 'int32', pa.int64(): 'int64', pa.float32(): 'float32', pa.float64(): 'float64'}
    return names.get(t, f'other:{t}')


def read_pandas(path):
    import pandas as pd
    df = pd.read_parquet(path)
    types = {}
    for name, dtype in df.dtypes.items():
        if isinstance(dtype, pd.ArrowDtype):
            types[name] = arrow_type(dtype.pyarrow_dtype)
        elif isinstance(dtype, pd.DatetimeTZDtype):
            types[name] = 'timestamp_utc' if str(dtype.tz) in UTC else f'other:{dtype}'
        elif isinstance(dtype, pd.CategoricalDtype):
            types[name] = 'dictionary'
        elif isinstance(dtype, pd.StringDtype) or (
                dtype == object and pd.api.types.infer_dtype(df[name], skipna=True) == 'string'):
            types[name] = 'string'
        elif pd.api.types.is_datetime64_dtype(dtype):
            types[name] = 'timestamp_naive'
        else:  # numpy int32/float64... and the nullable Int32/Float64 extension types
            types[name] = {'int32': 'int32', 'int64': 'int64', 'float32': 'float32', 'float64': 'float64'}.get(
                str(dtype).lower(), f'other:{dtype}')
    keys = len(df[KEYS].drop_duplicates()) if set(KEYS) <= set(df.columns) else None
    return len(df), {n: str(t) for n, t in df.dtypes.items()}, types, keys


def read_pyarrow(path):
    import pyarrow.dataset as ds
    table = ds.dataset(path, format='parquet', partitioning='hive').to_table()
    keys = table.group_by(KEYS).aggregate([]).num_rows if set(KEYS) <= set(table.column_names) else None
    return (table.num_rows, {f.name: str(f.type) for f in table.schema},
            {f.name: arrow_type(f.type) for f in table.schema}, keys)


def read_duckdb(path):
    import duckdb
    glob = os.path.join(path, '**', '*.parquet').replace("'", "''")
    rel = duckdb.sql(f"SELECT * FROM read_parquet('{glob}', hive_partitioning=true)")
    native = {n: str(t) for n, t in zip(rel.columns, rel.types)}
    names = {'VARCHAR': 'string', 'INTEGER': 'int32', 'BIGINT': 'int64', 'FLOAT': 'float32', 'DOUBLE': 'float64'}

    def normalise(t):  # TIMESTAMP WITH TIME ZONE (alias TIMESTAMPTZ), TIMESTAMPTZ_NS; TIMESTAMP[_S|_MS|_NS]
        if t == 'TIMESTAMP WITH TIME ZONE' or t.startswith('TIMESTAMPTZ'):
            return 'timestamp_utc'
        if t in ('TIMESTAMP', 'TIMESTAMP_S', 'TIMESTAMP_MS', 'TIMESTAMP_NS'):
            return 'timestamp_naive'
        return 'dictionary' if t.startswith('ENUM(') else names.get(t, f'other:{t}')
    types = {n: normalise(t) for n, t in native.items()}
    rows = rel.aggregate('count(*)').fetchall()[0][0]
    keys = (rel.select(', '.join(f'"{k}"' for k in KEYS)).distinct().aggregate('count(*)').fetchall()[0][0]
            if set(KEYS) <= set(rel.columns) else None)
    return rows, native, types, keys


def read_spark(path, tmp):
    # Everything Spark, its JVM and py4j write goes under tmp; the driver binds to loopback only.
    warnings.filterwarnings('ignore', message='PySpark does not yet fully support pandas')
    jvm = '-XX:-UsePerfData -XX:TieredStopAtLevel=1 -XX:+UseSerialGC'  # quicker start for short runs
    os.environ.update(TMPDIR=tmp, SPARK_LOCAL_DIRS=tmp, SPARK_LOCAL_IP='127.0.0.1', SPARK_LAUNCHER_OPTS=jvm)
    tempfile.tempdir = tmp
    log4j = os.path.join(tmp, 'log4j2.properties')
    with open(log4j, 'w') as f:
        f.write('rootLogger.level = error\nrootLogger.appenderRef.e.ref = e\nappender.e.type = Console\n'
                'appender.e.name = e\nappender.e.target = SYSTEM_ERR\nappender.e.layout.type = PatternLayout\n'
                'appender.e.layout.pattern = spark %p %c{1}: %m%n\n')
    java_opts = f'-Djava.io.tmpdir={tmp} -Dderby.system.home={tmp} -Dlog4j2.configurationFile={log4j} {jvm}'
    from pyspark.sql import SparkSession
    start = time.perf_counter()
    spark = (SparkSession.builder.master('local[1]').appName('read_dataset')
             .config('spark.driver.memory', '512m').config('spark.driver.extraJavaOptions', java_opts)
             .config('spark.driver.host', '127.0.0.1').config('spark.driver.bindAddress', '127.0.0.1')
             .config('spark.ui.enabled', 'false').config('spark.ui.showConsoleProgress', 'false')
             .config('spark.sql.session.timeZone', 'UTC').config('spark.log.level', 'ERROR')
             .config('spark.local.dir', tmp).config('spark.sql.warehouse.dir', os.path.join(tmp, 'warehouse'))
             .config('spark.sql.catalogImplementation', 'in-memory')
             .config('spark.sql.shuffle.partitions', '1').config('spark.default.parallelism', '1')
             .getOrCreate())
    spark.sparkContext.setLogLevel('ERROR')
    print(f'read_dataset: spark startup {time.perf_counter() - start:.2f}s', file=sys.stderr)
    try:
        df = spark.read.parquet(path)
        names = {'string': 'string', 'int': 'int32', 'bigint': 'int64', 'float': 'float32', 'double': 'float64',
                 'timestamp': 'timestamp_utc', 'timestamp_ntz': 'timestamp_naive'}
        native = {f.name: f.dataType.simpleString() for f in df.schema.fields}
        keys = df.select(*KEYS).distinct().count() if set(KEYS) <= set(df.columns) else None
        return df.count(), native, {n: names.get(t, f'other:{t}') for n, t in native.items()}, keys
    finally:
        spark.stop()


def main():
    if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
        print('usage: python read_dataset.py <dataset dir>', file=sys.stderr)
        return 2
    path = os.path.abspath(sys.argv[1])
    result = {}
    with tempfile.TemporaryDirectory(prefix='read_dataset-', ignore_cleanup_errors=True) as tmp:
        readers = {'pandas': read_pandas, 'pyarrow': read_pyarrow, 'duckdb': read_duckdb,
                   'spark': lambda p: read_spark(p, tmp)}
        for name, read in readers.items():
            start = time.perf_counter()
            try:
                rows, columns, types, keys = read(path)
                result[name] = {'rows': rows, 'columns': columns, 'types': types, 'distinct_keys': keys}
            except Exception as e:  # noqa: BLE001 - a reader's failure is a result, not a crash
                # A Py4JJavaError's own message only names the call; the Java exception says why.
                lines = str(getattr(e, 'java_exception', e)).strip().splitlines()
                result[name] = {'error': f'{type(e).__name__}: {lines[0] if lines else ""}'}
            print(f'read_dataset: {name} {time.perf_counter() - start:.2f}s', file=sys.stderr)
    print(json.dumps(result))
    return 0


if __name__ == '__main__':
    sys.exit(main())
