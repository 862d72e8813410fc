"""The references of `npm run bench:quality`, on the rows a real replay wrote.

For each replay it reads the output folder with pyarrow (one row per message: the cleaned
text, the label, the product's prequential score, the row's offset in the input), puts the
rows back in stream order and measures, on exactly those rows in that order:

- textstream: the scores the replay wrote (each made before the model trained on the row);
- Keras: the seed's network (Embedding -> LSTM -> Dense(1, sigmoid), Adam, binary
  cross-entropy) on the seed's token sequences (tf_keras' Tokenizer fitted on the same
  bootstrap window, pad_sequences(maxlen)), `predict_on_batch` then `train_on_batch` per
  minibatch, once with Keras' defaults and once with textstream's training settings;
- scikit-learn: HashingVectorizer over word unigrams and bigrams + SGDClassifier
  (log loss), `predict_proba` then `partial_fit` per minibatch;
- River: BagOfWords + MultinomialNB, `predict_proba_one` then `learn_one` per row;
- and, as a measurement of what the seed's network would need beside it, the same network
  with a wide linear branch over hashed 1-2-grams (a two-input Keras model).

Every model sees each row once and is scored on it before it learns from it. Accuracy
(threshold 0.5), AUC and log loss are computed here, by the same code for all of them,
over the whole stream, after the vocabulary's bootstrap window, and over the second half.

Input: a JSON spec (see bench/quality.ts) whose path is the only argument. Output: one
JSON object on stdout. Progress on stderr.
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pyarrow.dataset as ds  # noqa: E402
from sklearn.feature_extraction.text import HashingVectorizer  # noqa: E402
from sklearn.linear_model import SGDClassifier  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

EPSILON = 1e-7  # the log-loss clip of textstream's evaluation and of Keras
# Hash buckets of the wide branch: 2^18 keeps collisions rare for a few hundred thousand
# distinct 1-2-grams at 1 MB of weights.
WIDE_FEATURES = 2**18
# Adam moves each weight by about its learning rate per step, whatever the gradient; a
# linear model over sparse binary n-grams must move an n-gram's logit by far more than
# 0.003 per sighting to learn from a few sightings. Scaling the wide logit by 10 is a 10x
# learning rate for the wide weights alone (the deep branch keeps its own).
WIDE_SCALE = 10.0


def log(line):
    sys.stderr.write(f"quality_reference: {line}\n")
    sys.stderr.flush()


def measures(scores, labels):
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    clipped = np.clip(scores, EPSILON, 1 - EPSILON)
    both = len(np.unique(labels)) == 2
    return {
        "rows": int(len(labels)),
        "accuracy": float(np.mean((scores >= 0.5) == (labels == 1))),
        "auc": float(roc_auc_score(labels, scores)) if both else None,
        "logLoss": float(-np.mean(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped))),
    }


def windows(scores, labels, bootstrap_rows):
    n = len(labels)
    return {
        "whole": measures(scores, labels),
        "afterBootstrap": measures(scores[bootstrap_rows:], labels[bootstrap_rows:]),
        "secondHalf": measures(scores[n // 2:], labels[n // 2:]),
    }


def read_output(directory):
    # The output folder is one dataset; its `_` folders (checkpoints, dead letters) are skipped.
    table = ds.dataset(directory, format="parquet").to_table(columns=["offset", "text", "label", "score"])
    order = np.argsort(table.column("offset").to_numpy())
    texts = table.column("text").to_pylist()
    return (
        [texts[i] for i in order],
        table.column("label").to_numpy().astype(np.float32)[order],
        table.column("score").to_numpy().astype(np.float64)[order],
    )


def keras_loop(tokens, labels, settings, seed):
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input(shape=(tokens.shape[1],), dtype="int32"),
        keras.layers.Embedding(settings["numWords"], settings["embeddingDim"]),
        keras.layers.LSTM(settings["units"]),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    return score_then_train(model, lambda start, end: tokens[start:end], labels, settings)


def wide_and_deep_loop(tokens, texts, labels, settings, seed):
    """The seed's network beside a wide linear branch over hashed word 1-2-grams (binary) of
    the whole text: sigmoid(deep logit + WIDE_SCALE * wide logit), one Keras model with two
    inputs, trained as one with the same Adam. What the seed's network would need beside it
    to learn as fast as the linear baselines (issue 15)."""
    import keras

    keras.utils.set_random_seed(seed)
    vectorizer = HashingVectorizer(ngram_range=(1, 2), n_features=WIDE_FEATURES, alternate_sign=False, binary=True, norm=None)
    sequence = keras.Input(shape=(tokens.shape[1],), dtype="int32")
    hashed = keras.Input(shape=(WIDE_FEATURES,), dtype="float32")
    deep = keras.layers.Embedding(settings["numWords"], settings["embeddingDim"])(sequence)
    deep = keras.layers.LSTM(settings["units"])(deep)
    deep = keras.layers.Dense(1)(deep)
    wide = keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")(hashed)
    wide = keras.layers.Rescaling(WIDE_SCALE)(wide)
    output = keras.layers.Activation("sigmoid")(keras.layers.Add()([deep, wide]))
    model = keras.Model([sequence, hashed], output)
    return score_then_train(
        model,
        lambda start, end: [tokens[start:end], vectorizer.transform(texts[start:end]).toarray().astype(np.float32)],
        labels,
        settings,
    )


def score_then_train(model, inputs, labels, settings):
    """Compiles `model` with textstream's Adam settings, then per minibatch `predict_on_batch`
    and `train_on_batch` on `inputs(start, end)`: the scores, and the loop's seconds."""
    import keras

    optimizer = keras.optimizers.Adam(learning_rate=settings["learningRate"], global_clipnorm=settings["clipNorm"])
    model.compile(optimizer=optimizer, loss="binary_crossentropy")
    batch = settings["trainBatchSize"]
    scores = np.zeros(len(labels))
    started = time.perf_counter()
    for start in range(0, len(labels), batch):
        x = inputs(start, start + batch)
        scores[start:start + batch] = np.asarray(model.predict_on_batch(x)).reshape(-1)
        model.train_on_batch(x, labels[start:start + batch].reshape(-1, 1))
    return scores, time.perf_counter() - started


def sklearn_loop(texts, labels, batch):
    vectorizer = HashingVectorizer(ngram_range=(1, 2), n_features=2**20, alternate_sign=False)
    model = SGDClassifier(loss="log_loss", random_state=0)
    scores = np.full(len(labels), 0.5)
    started = time.perf_counter()
    fitted = False
    for start in range(0, len(labels), batch):
        x = vectorizer.transform(texts[start:start + batch])
        y = labels[start:start + batch]
        if fitted:
            scores[start:start + batch] = model.predict_proba(x)[:, 1]
        model.partial_fit(x, y, classes=[0.0, 1.0])
        fitted = True
    return scores, time.perf_counter() - started


def river_loop(texts, labels):
    from river import compose, feature_extraction, naive_bayes

    model = compose.Pipeline(feature_extraction.BagOfWords(), naive_bayes.MultinomialNB())
    scores = np.full(len(labels), 0.5)
    started = time.perf_counter()
    for i, (text, label) in enumerate(zip(texts, labels)):
        scores[i] = model.predict_proba_one(text).get(1, 0.5)
        model.learn_one(text, int(label))
    return scores, time.perf_counter() - started


def seed_tokens(texts, settings):
    from tf_keras.preprocessing.sequence import pad_sequences
    from tf_keras.preprocessing.text import Tokenizer

    tokenizer = Tokenizer(num_words=settings["numWords"])
    tokenizer.fit_on_texts(texts[:settings["bootstrapRows"]])
    return pad_sequences(tokenizer.texts_to_sequences(texts), maxlen=settings["maxLen"]).astype(np.int32)


def entry(name, scores, labels, seconds, bootstrap_rows, **extra):
    return {"model": name, "rowsPerSec": len(labels) / seconds, **windows(scores, labels, bootstrap_rows), **extra}


def main(spec_path):
    with open(spec_path) as f:
        spec = json.load(f)
    ours, seed_defaults = spec["settings"], spec["kerasDefaults"]
    out = {"runs": []}
    for run in spec["runs"]:
        texts, labels, scores = read_output(run["outputDir"])
        boot = ours["bootstrapRows"]
        results = [entry("textstream", scores, labels, run["seconds"], boot, replayAccuracy=run["replayAccuracy"])]
        tokens = seed_tokens(texts, ours)
        for name, settings in (("keras-defaults", {**ours, **seed_defaults}), ("keras-same-settings", ours)):
            log(f"seed {run['seed']}: {name}")
            k_scores, k_seconds = keras_loop(tokens, labels, settings, run["seed"])
            results.append(entry(name, k_scores, labels, k_seconds, boot, learningRate=settings["learningRate"], clipNorm=settings["clipNorm"]))
        log(f"seed {run['seed']}: Keras, seed network + wide branch")
        w_scores, w_seconds = wide_and_deep_loop(tokens, texts, labels, ours, run["seed"])
        results.append(entry("keras-wide-and-deep", w_scores, labels, w_seconds, boot))
        log(f"seed {run['seed']}: scikit-learn")
        s_scores, s_seconds = sklearn_loop(texts, labels, ours["trainBatchSize"])
        results.append(entry("sklearn-sgd", s_scores, labels, s_seconds, boot))
        log(f"seed {run['seed']}: river")
        r_scores, r_seconds = river_loop(texts, labels)
        results.append(entry("river-nb", r_scores, labels, r_seconds, boot))
        out["runs"].append({"seed": run["seed"], "rows": int(len(labels)), "results": results})
    import keras
    import river
    import sklearn
    import tensorflow as tf

    out["versions"] = {"keras": keras.__version__, "tensorflow": tf.__version__, "sklearn": sklearn.__version__,
                       "river": river.__version__, "python": sys.version.split()[0]}
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
