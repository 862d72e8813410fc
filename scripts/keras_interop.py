"""Moves the seed network between textstream (tfjs layers format) and Keras 3.

The seed network:

    model = keras.Sequential([
        keras.layers.Embedding(vocab, dim, input_length=max_len),
        keras.layers.LSTM(units),
        keras.layers.Dense(1, activation='sigmoid')])

Keras 3 cannot read the tfjs layers format (model.json + weights.bin), and textstream
cannot write Keras' HDF5 weights, so this script does the translation on the Python side.
`textstream model export` copies it into the export directory as load_keras.py.

to-keras (the default): textstream export -> Keras
    python load_keras.py [EXPORT_DIR] [--out model.keras] [--predict tokens.json]
                         [--predictions-out predictions.json]
  Rebuilds the network in Keras 3 from model.json's topology, loads weights.bin with
  numpy in weightsManifest order, saves `model.keras` (default: EXPORT_DIR/model.keras),
  then loads that file back with keras.models.load_model. With --predict (a JSON list of
  token-id lists, each maxLen long, as pad_sequences makes them), prints the reloaded
  model's predictions as a JSON list (or writes them to --predictions-out).
  EXPORT_DIR defaults to the directory this script is in.
  The tokenizer: tf_keras.preprocessing.text.tokenizer_from_json(open('tokenizer.json').read())

from-keras: Keras -> model.json + weights.bin (for textstream's model.initialModel)
    python keras_interop.py from-keras MODEL.keras OUT_DIR
  Writes a tfjs layers-format model.json (Sequential topology with the stock layers) and
  weights.bin (float32, Keras get_weights() order) for a seed-shaped Keras model.
"""
# @@EXPORT_INFO@@

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

SEED_LAYERS = ("Embedding", "LSTM", "Dense")
MODEL_JSON = "model.json"
WEIGHTS_BIN = "weights.bin"
DTYPES = {"float32": "<f4", "int32": "<i4"}


def read_tfjs(model_dir):
    """model.json's topology and its weights as (name, array) in manifest order."""
    with open(os.path.join(model_dir, MODEL_JSON)) as f:
        model_json = json.load(f)
    weights = []
    for group in model_json["weightsManifest"]:
        data = b"".join(open(os.path.join(model_dir, p), "rb").read() for p in group["paths"])
        offset = 0
        for spec in group["weights"]:
            if spec.get("quantization"):
                raise SystemExit(f"{spec['name']}: quantized weights are not supported")
            dtype = np.dtype(DTYPES[spec["dtype"]])
            count = int(np.prod(spec["shape"], dtype=np.int64))
            array = np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(spec["shape"])
            offset += count * dtype.itemsize
            if spec.get("group") != "optimizer":
                weights.append((spec["name"], array))
        if offset != len(data):
            raise SystemExit(f"weights in {group['paths']}: {len(data)} bytes, the manifest describes {offset}")
    return model_json["modelTopology"], weights


def seed_config(topology):
    """The seed network's sizes and activations from a tfjs Sequential topology."""
    config = topology["config"]
    layers = config["layers"] if isinstance(config, dict) else config
    kinds = tuple(layer["class_name"] for layer in layers)
    if topology.get("class_name") != "Sequential" or kinds != SEED_LAYERS:
        raise SystemExit(f"expected a Sequential {list(SEED_LAYERS)}, got {topology.get('class_name')} {list(kinds)}")
    embedding, lstm, dense = (layer["config"] for layer in layers)
    max_len = embedding.get("input_length") or (embedding.get("batch_input_shape") or [None, None])[1]
    if isinstance(max_len, list):
        max_len = max_len[0]
    if not max_len:
        raise SystemExit("the Embedding layer states no input length")
    return {
        "vocab": embedding["input_dim"],
        "dim": embedding["output_dim"],
        "max_len": int(max_len),
        "units": lstm["units"],
        "activation": lstm.get("activation", "tanh"),
        "recurrent_activation": lstm.get("recurrent_activation", "sigmoid"),
        "dense_units": dense["units"],
        "dense_activation": dense.get("activation", "linear"),
    }


def build_keras(cfg):
    import keras

    return keras.Sequential([
        keras.Input((cfg["max_len"],), dtype="int32"),
        keras.layers.Embedding(cfg["vocab"], cfg["dim"], name="embedding"),
        keras.layers.LSTM(cfg["units"], activation=cfg["activation"],
                          recurrent_activation=cfg["recurrent_activation"], name="lstm"),
        keras.layers.Dense(cfg["dense_units"], activation=cfg["dense_activation"], name="dense"),
    ])


def to_keras(model_dir, out, predict, predictions_out):
    import keras

    topology, weights = read_tfjs(model_dir)
    model = build_keras(seed_config(topology))
    current = model.get_weights()
    if len(current) != len(weights):
        raise SystemExit(f"model.json has {len(weights)} weights, the Keras model {len(current)}")
    for (name, array), expected in zip(weights, current):
        if array.shape != expected.shape:
            raise SystemExit(f"{name}: shape {array.shape}, Keras expects {expected.shape}")
    model.set_weights([array for _, array in weights])
    model.save(out)
    # Load what was saved: the point is a file Keras reads, so prove it.
    reloaded = keras.models.load_model(out)
    print(f"wrote {out} (Keras {keras.__version__})", file=sys.stderr)
    if predict:
        with open(predict) as f:
            tokens = np.asarray(json.load(f), dtype="int32")
        predictions = reloaded.predict(tokens, verbose=0).reshape(-1).astype(float).tolist()
        if predictions_out:
            with open(predictions_out, "w") as f:
                json.dump(predictions, f)
        else:
            json.dump(predictions, sys.stdout)
            print()


def from_keras(model_path, out_dir):
    import keras

    model = keras.models.load_model(model_path, compile=False)
    kinds = tuple(type(layer).__name__ for layer in model.layers)
    if kinds != SEED_LAYERS:
        raise SystemExit(f"expected layers {list(SEED_LAYERS)}, got {list(kinds)}")
    max_len = model.input_shape[1]
    if not max_len:
        raise SystemExit("the model's input has no fixed length; build it with keras.Input((max_len,))")
    embedding, lstm, dense = model.layers
    lstm_config, dense_config = lstm.get_config(), dense.get_config()
    common = {"trainable": True, "dtype": "float32"}
    topology = {
        "class_name": "Sequential",
        "config": {"name": model.name, "layers": [
            {"class_name": "Embedding", "config": {
                **common, "name": embedding.name, "input_dim": embedding.input_dim,
                "output_dim": embedding.output_dim, "input_length": max_len,
                "batch_input_shape": [None, max_len], "mask_zero": False}},
            {"class_name": "LSTM", "config": {
                **common, "name": lstm.name, "units": lstm.units,
                "activation": lstm_config["activation"],
                "recurrent_activation": lstm_config["recurrent_activation"],
                "use_bias": lstm_config["use_bias"], "return_sequences": False, "return_state": False,
                "go_backwards": False, "stateful": False, "unroll": False, "unit_forget_bias": True,
                "dropout": 0.0, "recurrent_dropout": 0.0, "implementation": 1}},
            {"class_name": "Dense", "config": {
                **common, "name": dense.name, "units": dense.units,
                "activation": dense_config["activation"], "use_bias": dense_config["use_bias"]}},
        ]},
        "keras_version": f"keras {keras.__version__}",
        "backend": "tensorflow",
    }
    names = [f"{embedding.name}/embeddings", f"{lstm.name}/kernel", f"{lstm.name}/recurrent_kernel",
             f"{lstm.name}/bias", f"{dense.name}/kernel", f"{dense.name}/bias"]
    arrays = [np.asarray(w, dtype="<f4") for w in model.get_weights()]
    if len(arrays) != len(names):
        raise SystemExit(f"expected {len(names)} weights (biases on), got {len(arrays)}")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, WEIGHTS_BIN), "wb") as f:
        for array in arrays:
            f.write(np.ascontiguousarray(array).tobytes())
    model_json = {
        "format": "layers-model",
        "generatedBy": f"keras {keras.__version__}",
        "convertedBy": "textstream scripts/keras_interop.py from-keras",
        "modelTopology": topology,
        "weightsManifest": [{"paths": [f"./{WEIGHTS_BIN}"], "weights": [
            {"name": name, "shape": list(array.shape), "dtype": "float32"} for name, array in zip(names, arrays)]}],
    }
    with open(os.path.join(out_dir, MODEL_JSON), "w") as f:
        json.dump(model_json, f)
    print(f"wrote {os.path.join(out_dir, MODEL_JSON)} and {WEIGHTS_BIN}", file=sys.stderr)


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    if argv[:1] == ["from-keras"]:
        parser = argparse.ArgumentParser(prog="keras_interop.py from-keras", description="Keras model -> model.json + weights.bin")
        parser.add_argument("model", help="a Keras model file (.keras)")
        parser.add_argument("out_dir")
        args = parser.parse_args(argv[1:])
        from_keras(args.model, args.out_dir)
        return
    if argv[:1] == ["to-keras"]:
        argv = argv[1:]
    parser = argparse.ArgumentParser(description="textstream export (model.json + weights.bin) -> Keras model.keras")
    parser.add_argument("export_dir", nargs="?", default=here)
    parser.add_argument("--out", help="the .keras file to write (default: EXPORT_DIR/model.keras)")
    parser.add_argument("--predict", help="JSON file: a list of token-id lists to predict")
    parser.add_argument("--predictions-out", help="write the predictions (JSON) here instead of stdout")
    args = parser.parse_args(argv)
    to_keras(args.export_dir, args.out or os.path.join(args.export_dir, "model.keras"), args.predict, args.predictions_out)


if __name__ == "__main__":
    main(sys.argv[1:])
