"""Writes data/penguins_processed.csv from the penguin examples that TFX ships for its own tests.

TFX's pip package has no penguin CSV, but ``tfx/components/testdata/penguin/data`` holds the same processed Palmer
Penguins data (CC0; features scaled to [0, 1], species as 0/1/2) as TFRecords of ``tf.train.Example``. This script
turns both splits back into one CSV, the input of ``CsvExampleGen``. The CSV is committed; run this only to check or
regenerate it::

    python examples/penguin/make_data.py
"""

from __future__ import annotations

import csv
from pathlib import Path

COLUMNS = ["species", "culmen_length_mm", "culmen_depth_mm", "flipper_length_mm", "body_mass_g"]


def main() -> None:
    import tensorflow as tf
    import tfx

    source = Path(tfx.__file__).parent / "components" / "testdata" / "penguin" / "data"
    target = Path(__file__).resolve().parent / "data" / "penguins_processed.csv"
    target.parent.mkdir(exist_ok=True)
    rows = []
    for split in ("Split-train", "Split-eval"):
        for path in sorted((source / split).glob("*.gz")):
            for record in tf.data.TFRecordDataset(str(path), compression_type="GZIP"):
                features = tf.train.Example.FromString(record.numpy()).features.feature
                row = {"species": features["species"].int64_list.value[0]}
                for name in COLUMNS[1:]:
                    row[name] = round(features[name].float_list.value[0], 6)
                rows.append(row)
    with open(target, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows to {target}")


if __name__ == "__main__":
    main()
