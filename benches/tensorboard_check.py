"""Reads tapegrad's TensorBoard event files with TensorBoard's own reader (out of CI).

Usage: python benches/tensorboard_check.py LOGDIR [LOGDIR ...]

Every run (folder holding `*tfevents*` files) under each LOGDIR is loaded with the PyPI
`tensorboard` package's `EventAccumulator` (which checks each record's masked CRC-32C and
decodes the `Event` protocol buffers), and what it found is printed: the scalar series
(points, steps, last value), histograms (buckets, count), images (size, PNG signature),
text and the hparams plugin's experiment and session. Any record TensorBoard cannot read
raises an error. Install the package with `pip install tensorboard`.
"""

import os
import sys

from tensorboard.backend.event_processing import event_file_loader
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

# Load every event, not a sample.
EVERYTHING = {"scalars": 0, "histograms": 0, "images": 0, "tensors": 0, "compressedHistograms": 0}


def runs(logdir):
    for folder, _, files in sorted(os.walk(logdir)):
        if any("tfevents" in f for f in files):
            yield folder, sorted(os.path.join(folder, f) for f in files if "tfevents" in f)


def check_run(folder, files):
    records = 0
    for path in files:
        # Reads every record through TensorBoard's record reader (CRCs checked).
        records += sum(1 for _ in event_file_loader.RawEventFileLoader(path).Load())
    acc = EventAccumulator(folder, size_guidance=EVERYTHING)
    acc.Reload()
    tags = acc.Tags()
    print(f"run {folder}: {len(files)} file(s), {records} records")
    for tag in tags["scalars"]:
        points = acc.Scalars(tag)
        steps = [p.step for p in points]
        print(f"  scalar {tag}: {len(points)} points, steps {steps[:6]}{'...' if len(steps) > 6 else ''}, last {points[-1].value:.6g}")
    for tag in tags["histograms"]:
        h = acc.Histograms(tag)
        last = h[-1].histogram_value
        print(f"  histogram {tag}: {len(h)} steps {[e.step for e in h]}, last: {len(last.bucket)} buckets, num {last.num:g}, min {last.min:.4g}, max {last.max:.4g}")
    for tag in tags["images"]:
        for image in acc.Images(tag):
            png = image.encoded_image_string[:8] == b"\x89PNG\r\n\x1a\n"
            print(f"  image {tag}: step {image.step}, {image.width}x{image.height}, PNG {png}")
    for tag in tags["tensors"]:
        for event in acc.Tensors(tag):
            if event.tensor_proto.string_val:
                text = event.tensor_proto.string_val[0].decode("utf-8")
                first = text.splitlines()[0] if text else ""
                print(f"  text {tag}: step {event.step}, {len(text)} chars, first line {first!r}")
            else:
                print(f"  tensor {tag}: step {event.step}")
    try:
        hparams = acc.PluginTagToContent("hparams")
    except KeyError:
        hparams = {}
    for tag, content in sorted(hparams.items()):
        data = plugin_data_pb2.HParamsPluginData.FromString(content)
        kind = data.WhichOneof("data")
        if kind == "experiment":
            names = [h.name for h in data.experiment.hparam_infos]
            metrics = [m.name.tag for m in data.experiment.metric_infos]
            print(f"  hparams {tag}: hparams {names}, metrics {metrics}")
        elif kind == "session_start_info":
            values = {k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind")) for k, v in data.session_start_info.hparams.items()}
            print(f"  hparams {tag}: {values}")
        else:
            print(f"  hparams {tag}: status {data.session_end_info.status}")
    return records


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    total = 0
    for logdir in sys.argv[1:]:
        found = list(runs(logdir))
        if not found:
            sys.exit(f"no event file under {logdir}")
        for folder, files in found:
            total += check_run(folder, files)
    print(f"ok: {total} records read by TensorBoard's reader")


if __name__ == "__main__":
    main()
