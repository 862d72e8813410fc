"""The seed's network in Keras itself, as the reference for src/model/network.ts.

Builds the seed model with tf_keras (Keras 2, the Keras the seed's Tokenizer comes from):

    model = keras.Sequential([
        keras.layers.Embedding(vocab, dim, input_length=max_len),
        keras.layers.LSTM(units),
        keras.layers.Dense(1, activation='sigmoid')])

loads the weights our TypeScript network exported, and reports, for the same token
sequences: predictions, the binary cross-entropy, the gradient of that loss with respect
to every weight (the backward pass, dense), each layer's parameter count and output shape.
test/model/network.test.ts compares them with tfjs.

Input directory (written by the test):
    spec.json     {"vocabSize", "embeddingDim", "units", "maxLen", "rows",
                   "weights": [{"name", "shape"}, ...]}   weights in Keras get_weights() order
    weights.f32   the weights, float32 little-endian, concatenated in that order
    tokens.i32    rows x maxLen token ids, int32 little-endian
    labels.f32    rows labels (0/1), float32
Output directory:
    result.json   {"predictions", "loss", "params", "outputShapes", "kerasVersion"}
    grads.f32     d loss / d weight, float32, concatenated in the same order as weights.f32

Usage: $(bash scripts/python-env.sh) scripts/keras_model_reference.py IN_DIR OUT_DIR
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402


def main(in_dir: str, out_dir: str) -> None:
    with open(os.path.join(in_dir, "spec.json")) as f:
        spec = json.load(f)
    rows, max_len = spec["rows"], spec["maxLen"]
    tokens = np.fromfile(os.path.join(in_dir, "tokens.i32"), dtype="<i4").reshape(rows, max_len)
    labels = np.fromfile(os.path.join(in_dir, "labels.f32"), dtype="<f4").reshape(rows, 1)
    flat = np.fromfile(os.path.join(in_dir, "weights.f32"), dtype="<f4")

    model = keras.Sequential([
        keras.layers.Embedding(spec["vocabSize"], spec["embeddingDim"], input_length=max_len),
        keras.layers.LSTM(spec["units"]),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    model.build((None, max_len))

    weights, offset = [], 0
    for entry, current in zip(spec["weights"], model.get_weights(), strict=True):
        shape = tuple(entry["shape"])
        if shape != current.shape:
            raise SystemExit(f"{entry['name']}: ours {shape}, Keras {current.shape}")
        size = int(np.prod(shape))
        weights.append(flat[offset:offset + size].reshape(shape))
        offset += size
    if offset != flat.size:
        raise SystemExit(f"weights.f32 has {flat.size} values, the spec {offset}")
    model.set_weights(weights)

    predictions = model(tokens, training=False).numpy()
    with tf.GradientTape() as tape:
        output = model(tokens, training=True)
        loss = keras.losses.BinaryCrossentropy()(labels, output)
    # The embedding gradient comes back as IndexedSlices; densify it to compare.
    grads = [tf.convert_to_tensor(g).numpy().astype("<f4") for g in tape.gradient(loss, model.trainable_weights)]

    os.makedirs(out_dir, exist_ok=True)
    np.concatenate([g.ravel() for g in grads]).tofile(os.path.join(out_dir, "grads.f32"))
    result = {
        "predictions": predictions.ravel().tolist(),
        "loss": float(loss.numpy()),
        "params": [layer.count_params() for layer in model.layers],
        "outputShapes": [list(layer.output_shape) for layer in model.layers],
        "kerasVersion": keras.__version__,
    }
    with open(os.path.join(out_dir, "result.json"), "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2])
