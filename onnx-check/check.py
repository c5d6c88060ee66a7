"""An exported tapegrad model in ONNX Runtime, against tapegrad's own outputs.

    python onnx-check/check.py MODEL.onnx [NPY_DIR]

Checks the file with `onnx.checker` (full check, with shape inference) and prints its opset
and IR version; with NPY_DIR (`images.npy` and tapegrad's `logits.npy`, written by
`cd onnx-check && cargo run --release --example fashion -- ARCH WEIGHTS MODEL.onnx
NPY_DIR`) runs the images through ONNX Runtime in batches of 100 and prints how many
predicted classes agree with tapegrad's and the largest logit difference.
Needs `pip install onnx onnxruntime numpy`; not part of CI.
"""

import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    path = sys.argv[1]
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    print(f"{path}: valid ONNX, opset {opset}, IR version {model.ir_version}")
    if len(sys.argv) == 2:
        return
    folder = Path(sys.argv[2])
    images = np.load(folder / "images.npy")
    expected = np.load(folder / "logits.npy")
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    found = np.concatenate(
        [
            session.run(["output"], {"input": images[i : i + 100]})[0]
            for i in range(0, len(images), 100)
        ]
    )
    same = int((found.argmax(axis=1) == expected.argmax(axis=1)).sum())
    difference = float(np.abs(found - expected).max())
    print(
        f"ONNX Runtime {onnxruntime.__version__}, {len(images)} images: "
        f"{same}/{len(images)} predicted classes as tapegrad's, "
        f"max |logit difference| {difference:.3e}"
    )


if __name__ == "__main__":
    main()
