#!/usr/bin/env bash
# Creates (or reuses) the project-local Python environment used as an independent
# reference in tests and benchmarks: Keras (tf-keras) for tokenizer/model parity,
# pyarrow, DuckDB, pandas and Spark (pyspark) as independent Parquet dataset readers;
# scikit-learn and River as the online baselines of `npm run bench:quality`.
# Lives in .cache/venv (git-ignored).
# Prints the path of the environment's python on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.cache/venv
STAMP="$VENV/.textstream-requirements"
REQS="tensorflow-cpu==2.21.0 tf-keras==2.21.0 pyarrow==26.0.1 duckdb==2.0.1 pandas==3.1.1 pyspark==4.3.0 scikit-learn==1.9.1 river==0.26.1"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$REQS" ]]; then
  echo "$PWD/$VENV/bin/python"
  exit 0
fi
python3 -m venv "$VENV" >&2
"$VENV/bin/pip" install --quiet --upgrade pip >&2
# tf-keras declares a dependency on the `tensorflow` distribution; tensorflow-cpu provides
# the same package without the GPU wheel, so tf-keras is installed without its deps.
"$VENV/bin/pip" install --quiet tensorflow-cpu==2.21.0 pyarrow==26.0.1 duckdb==2.0.1 pandas==3.1.1 pyspark==4.3.0 scikit-learn==1.9.1 river==0.26.1 >&2
"$VENV/bin/pip" install --quiet --no-deps tf-keras==2.21.0 >&2
echo "$REQS" > "$STAMP"
echo "$PWD/$VENV/bin/python"
