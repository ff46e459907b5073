"""Reads a run's TensorBoard folder with TensorBoard's own EventAccumulator and prints it as JSON.

    .venv/bin/python tests/tb_read.py RUN/tb

prints {"scalars": {tag: [[step, value], ...]}, "images": {tag: [[step, width, height], ...]}}, each list in
the order TensorBoard keeps it, after its purge of the steps a later session's SessionLog START orphaned.
Used by tests/tensorboard_cli.rs.
"""
import json
import sys

from tensorboard.backend.event_processing import event_accumulator


def main(logdir):
    # size_guidance 0: keep every event (the default keeps a sample of 4 images per tag).
    acc = event_accumulator.EventAccumulator(
        logdir,
        size_guidance={event_accumulator.SCALARS: 0, event_accumulator.IMAGES: 0},
        purge_orphaned_data=True,
    )
    acc.Reload()
    tags = acc.Tags()
    out = {
        "scalars": {t: [[e.step, e.value] for e in acc.Scalars(t)] for t in tags["scalars"]},
        "images": {t: [[e.step, e.width, e.height] for e in acc.Images(t)] for t in tags["images"]},
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: tb_read.py LOGDIR")
    main(sys.argv[1])
