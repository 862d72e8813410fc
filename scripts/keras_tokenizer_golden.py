"""Golden outputs of Keras' own Tokenizer and pad_sequences, for the TypeScript tokenizer.

Writes test/fixtures/keras-tokenizer-golden.json: the exact input texts, and for each
configuration below the sequences, padded arrays, head of the word index and
`tokenizer.to_json()` that tf_keras produced. test/text/tokenizer.test.ts compares our
tokenizer with it token for token; test/text/keras-parity.test.ts re-runs this script and
checks the committed fixture is still exactly what Keras writes.

Inputs: hand-written edge cases (Unicode lower-casing, filters, separators), then the
corpus messages named in test/fixtures/keras-tokenizer-golden.messages.txt as RAW e-mails
(headers, '\\r', MIME, HTML: the hardest input for filters and splitting), each cut to its
first 2000 code points to keep the fixture small (< 3 MB). The tokenizer sees the texts as
stored, so the TypeScript test does not depend on the cleaner.

Usage (the project venv, see scripts/python-env.sh):
    $(bash scripts/python-env.sh) scripts/keras_tokenizer_golden.py [--out PATH]
"""

import argparse
import json
import os
import sys
import unicodedata

# `to_json()` serialises word_docs, filled by iterating a set of strings: its order
# follows str hashing, which Python randomises per process. A fixed seed makes the
# output byte-for-byte reproducible; re-exec before anything is hashed.
if os.environ.get("PYTHONHASHSEED") != "0":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tf_keras  # noqa: E402
from tf_keras.preprocessing.sequence import pad_sequences  # noqa: E402
from tf_keras.preprocessing.text import Tokenizer  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "node_modules", "@stdlib", "datasets-spam-assassin", "data")
MESSAGE_LIST = os.path.join(ROOT, "test", "fixtures", "keras-tokenizer-golden.messages.txt")
DEFAULT_OUT = os.path.join(ROOT, "test", "fixtures", "keras-tokenizer-golden.json")

MAX_CHARS = 2000
WORD_INDEX_HEAD = 300

EDGE_TEXTS = [
    "",
    "!!! ... ,,, ??? ---",
    "   ",
    "Hello, World! Hello? HELLO... world",
    "tab\tseparated\nnew line\r\nwindows line\rold mac",
    "İstanbul İİ ǅungla ΑΣ ΟΔΟΣ. Σ ΣΑ ß ẞ ﬃ Ω K Å",
    # Letters that got a lower-case mapping after Unicode 14 (Python 3.11 keeps them).
    "Ᲊ Ꟍ Ɤ 𐵐 𖺠 ꟋΣ ΑΣ𐵐",
    "emoji 😀😀 astral 𝐀𝐁𝐂 combining e\u0301 vs \u00e9",
    "nbsp\u00a0joined zero\u200bwidth ideographic\u3000space",
    "don't won't it's 'quoted'",
    "<OOV> oov OOV the the",
    "numbers 123 4.56 7,890 1e10",
    "line\u2028sep para\u2029sep vt\x0bff\x0cfs\x1c",
    "a::b:: ::c:: d. e.f g..h",
]

# Each tokenizer is fitted on texts[:fit] (the "bootstrap window"), then turns ALL texts
# into sequences, so the texts after the window exercise unknown words. `pads` are
# pad_sequences calls on those sequences; `to_json` stores tokenizer.to_json().
CONFIGS = [
    # The pipeline's settings: num_words 10 000, maxlen 100, pre/pre; and other paddings.
    {"name": "num_words_10000", "tokenizer": {"num_words": 10000}, "fit": 100, "to_json": True,
     "pads": [{"maxlen": 100, "padding": "pre", "truncating": "pre"},
              {"maxlen": 100, "padding": "post", "truncating": "post"},
              {"maxlen": 30, "padding": "post", "truncating": "pre"},
              {"maxlen": 30, "padding": "pre", "truncating": "post"}]},
    # A small window keeps its to_json small.
    {"name": "num_words_50_oov", "tokenizer": {"num_words": 50, "oov_token": "<OOV>"}, "fit": 40,
     "to_json": True, "pads": [{"maxlen": 100, "padding": "pre", "truncating": "pre"}]},
    # No limit; the OOV token is also a frequent word: Keras' dict(zip(...)) then gives it
    # the later index and never emits index 1.
    {"name": "no_limit_oov_is_a_word", "tokenizer": {"oov_token": "the"}, "fit": 100, "pads": []},
    # Custom filters, no lower-casing, newline separator (table path, other split char).
    {"name": "lines_no_lower", "tokenizer": {"filters": "\t\r", "split": "\n", "lower": False},
     "fit": 100, "pads": []},
    # Multi-character separator: Keras translates filters to it, then str.split()s.
    {"name": "multichar_split", "tokenizer": {"split": ": ", "num_words": 500, "oov_token": "zz"},
     "fit": 100, "pads": []},
]


def load_texts():
    texts = list(EDGE_TEXTS)
    names = []
    with open(MESSAGE_LIST, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            with open(os.path.join(CORPUS, line + ".json"), encoding="utf-8") as m:
                texts.append(json.load(m)["text"][:MAX_CHARS])
            names.append(line)
    return texts, names


def run_config(config, texts):
    tokenizer = Tokenizer(**config["tokenizer"])
    tokenizer.fit_on_texts(texts[: config["fit"]])
    sequences = tokenizer.texts_to_sequences(texts)
    out = {
        "name": config["name"],
        "tokenizer": config["tokenizer"],
        "fit": config["fit"],
        "sequences": sequences,
        "pads": [dict(pad, padded=pad_sequences(sequences, **pad).tolist()) for pad in config["pads"]],
        "wordIndexSize": len(tokenizer.word_index),
        "wordIndexHead": list(tokenizer.word_index.items())[:WORD_INDEX_HEAD],
    }
    if config.get("to_json"):
        out["toJson"] = tokenizer.to_json()
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=DEFAULT_OUT)
    args = parser.parse_args()
    texts, names = load_texts()
    golden = {
        "generator": "scripts/keras_tokenizer_golden.py",
        "tfKerasVersion": tf_keras.__version__,
        # Python's str.lower() follows this Unicode version; Keras lower-cases with it.
        "pythonUnicodeVersion": unicodedata.unidata_version,
        "edgeCount": len(EDGE_TEXTS),
        "messages": names,
        "texts": texts,
        "configs": [run_config(c, texts) for c in CONFIGS],
    }
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
