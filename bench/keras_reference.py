"""Keras' throughput on the bench's own data: the reference `npm run bench` compares with.

Reads the inputs bench/keras.ts wrote (the same cleaned texts and token sequences our
figures are measured on) and prints one JSON object on stdout with per-repetition rates:

- tokenizer: tf_keras' Tokenizer (the seed's; Keras 3 dropped it) with num_words,
  `fit_on_texts` over every text (texts/s), and `texts_to_sequences` + `pad_sequences`
  (texts/s); also how many rows differ from our tokenizer's sequences (should be 0).
- model: the seed network built with Keras 3 (`keras`, TensorFlow backend):
      Embedding(vocab, dim) -> LSTM(units) -> Dense(1, sigmoid), Adam(lr), binary cross-entropy
  (`input_length` is Keras 2 only; keras.Input(shape=(maxLen,)) fixes the length instead),
  timed as `train_on_batch` at the train batch size, as the prequential loop
  `predict_on_batch` then `train_on_batch` at that size, and `predict` at each score batch
  size, in samples/s, after warm-up. `predict` runs on chunks of PREDICT_CHUNK rows, so
  its per-call set-up is spread over several batches as a stream's would be.

Input directory:
    spec.json    {"rows", "maxLen", "vocabSize", "embeddingDim", "units", "learningRate",
                  "numWords", "trainBatch", "scoreBatches", "reps", "seconds", "seed"}
    texts.json   the cleaned texts, a JSON array of strings (rows of them)
    tokens.i32   rows x maxLen token ids, int32 little-endian (our tokenizer's output)
    labels.f32   rows labels (0/1), float32 little-endian

Usage: $(bash scripts/python-env.sh) bench/keras_reference.py IN_DIR
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402
import tf_keras  # noqa: E402
from tf_keras.preprocessing.sequence import pad_sequences  # noqa: E402
from tf_keras.preprocessing.text import Tokenizer  # noqa: E402

PREDICT_CHUNK = 1024
# A tokenizer repetition repeats full passes until this long (one pass of a small corpus
# is too short to time); the same rule as bench/stages.ts.
MIN_PASS_SECONDS = 0.5


def rates(step, rows_per_step, seconds, reps, warmup):
    """Calls step() for `seconds` per repetition (at least once) after `warmup` untimed calls."""
    for _ in range(warmup):
        step()
    out = []
    for _ in range(reps):
        n = 0
        start = time.perf_counter()
        while True:
            step()
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
        out.append(n * rows_per_step / elapsed)
    return out


def cyclic_rows(tokens, count):
    """`count` rows cycling through `tokens`, so a batch is full even for a tiny corpus."""
    return np.take(tokens, np.arange(count) % tokens.shape[0], axis=0)


def tokenizer_figures(spec, texts, ours):
    num_words, max_len, reps = spec["numWords"], spec["maxLen"], spec["reps"]
    fitted = {}

    def fit():
        fitted["t"] = Tokenizer(num_words=num_words)
        fitted["t"].fit_on_texts(texts)

    fit_rates = rates(fit, len(texts), MIN_PASS_SECONDS, reps, warmup=0)
    tokenizer = fitted["t"]
    padded = {}

    def encode():
        padded["x"] = pad_sequences(tokenizer.texts_to_sequences(texts), maxlen=max_len)

    encode_rates = rates(encode, len(texts), MIN_PASS_SECONDS, reps, warmup=0)
    mismatched = int(np.sum(np.any(padded["x"] != ours, axis=1)))
    return {"fitTextsPerSec": fit_rates, "encodeTextsPerSec": encode_rates, "mismatchedRows": mismatched}


def model_figures(spec, tokens, labels):
    keras.utils.set_random_seed(spec["seed"])
    model = keras.Sequential([
        keras.Input(shape=(spec["maxLen"],), dtype="int32"),
        keras.layers.Embedding(spec["vocabSize"], spec["embeddingDim"]),
        keras.layers.LSTM(spec["units"]),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=spec["learningRate"]), loss="binary_crossentropy")
    seconds, reps = spec["seconds"], spec["reps"]

    batch = spec["trainBatch"]
    count = max(1, -(-tokens.shape[0] // batch)) * batch
    xs, ys = cyclic_rows(tokens, count), cyclic_rows(labels, count)
    position = {"i": 0}

    def train():
        i = position["i"] % (count // batch)
        position["i"] += 1
        model.train_on_batch(xs[i * batch:(i + 1) * batch], ys[i * batch:(i + 1) * batch])

    # Warm-up: the first calls trace and compile the train function.
    figures = {"train": {"batch": batch, "samplesPerSec": rates(train, batch, seconds, reps, warmup=3)}}

    def score_then_train():
        i = position["i"] % (count // batch)
        position["i"] += 1
        x, y = xs[i * batch:(i + 1) * batch], ys[i * batch:(i + 1) * batch]
        model.predict_on_batch(x)
        model.train_on_batch(x, y)

    # The prequential loop on its own: what textstream's learner.process does per step.
    figures["scoreThenTrain"] = {"batch": batch, "samplesPerSec": rates(score_then_train, batch, seconds, reps, warmup=3)}

    chunk = cyclic_rows(tokens, PREDICT_CHUNK)
    figures["predict"] = []
    for size in spec["scoreBatches"]:
        def predict(size=size):
            model.predict(chunk, batch_size=size, verbose=0)

        figures["predict"].append({"batch": size, "samplesPerSec": rates(predict, PREDICT_CHUNK, seconds, reps, warmup=2)})
    figures["jitCompile"] = str(model.jit_compile)
    return figures


def main(in_dir):
    with open(os.path.join(in_dir, "spec.json")) as f:
        spec = json.load(f)
    rows, max_len = spec["rows"], spec["maxLen"]
    with open(os.path.join(in_dir, "texts.json"), encoding="utf-8") as f:
        texts = json.load(f)
    tokens = np.fromfile(os.path.join(in_dir, "tokens.i32"), dtype="<i4").reshape(rows, max_len)
    labels = np.fromfile(os.path.join(in_dir, "labels.f32"), dtype="<f4").reshape(rows, 1)
    if len(texts) != rows:
        raise SystemExit(f"texts.json has {len(texts)} texts, spec.json says {rows}")

    result = {
        "versions": {"keras": keras.__version__, "tfKeras": tf_keras.__version__, "tensorflow": tf.__version__,
                     "python": sys.version.split()[0], "backend": keras.backend.backend()},
        # 0 means TensorFlow's default: one thread per core.
        "threads": {"intraOp": tf.config.threading.get_intra_op_parallelism_threads(),
                    "interOp": tf.config.threading.get_inter_op_parallelism_threads()},
        "tokenizer": tokenizer_figures(spec, texts, tokens),
        "model": model_figures(spec, tokens, labels),
    }
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
