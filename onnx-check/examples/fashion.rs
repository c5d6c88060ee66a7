//! The main job's exported model against tapegrad on the held-out images:
//! `fashion mlp|cnn WEIGHTS ONNX [NPY_DIR]` loads the weights `fashion_mnist --save` wrote
//! into the network, predicts the 2,000 held-out images of the bundled split with tapegrad,
//! runs the file `fashion_mnist --export` wrote in tract (batches of 100), and prints how
//! many predicted classes agree and the largest logit difference. With `NPY_DIR`, also
//! writes `images.npy` and tapegrad's `logits.npy` there for `check.py` (ONNX Runtime).
//!
//! ```sh
//! cargo run --release --example fashion_mnist -- --model cnn --save cnn.safetensors --export cnn.onnx
//! cd onnx-check && cargo run --release --example fashion -- cnn ../cnn.safetensors ../cnn.onnx npy/
//! python check.py ../cnn.onnx npy/
//! ```
use std::error::Error;
use std::path::Path;

use ndarray::{ArrayD, Axis, s};
use tapegrad::datasets::{ImageSet, load};
use tapegrad::models::{small_cnn, tutorial_mlp};
use tapegrad::nn::model::Model;
use tapegrad::nn::onnx::{IR_VERSION, OPSET_VERSION};
use tapegrad::report::argmax_rows;
use tract_onnx::prelude::{Framework, InferenceModelExt, Tensor, tvec};

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [arch, weights, onnx, rest @ ..] = args.as_slice() else {
        return Err("usage: fashion mlp|cnn WEIGHTS ONNX [NPY_DIR]".into());
    };
    let data = load(ImageSet::FashionMnist, None)?;
    let (_, height, width) = data.test_x.dim();
    let network = match arch.as_str() {
        "mlp" => tutorial_mlp(),
        "cnn" => small_cnn(height, width),
        other => return Err(format!("unknown model `{other}` (mlp or cnn)").into()),
    };
    let mut model = Model::new(network);
    model.build(&[height, width], 0)?;
    model.load(weights)?;
    let expected = model.predict(&data.test_x, 100)?;

    let runnable = tract_onnx::onnx()
        .model_for_path(onnx)?
        .into_optimized()?
        .into_runnable()?;
    let n = data.test_x.len_of(Axis(0));
    let mut logits = Vec::with_capacity(expected.len());
    for start in (0..n).step_by(100) {
        let batch = data.test_x.slice(s![start..(start + 100).min(n), .., ..]);
        let values: Vec<f32> = batch.iter().copied().collect();
        let input = Tensor::from_shape(batch.shape(), &values)?;
        let output = runnable.run(tvec!(input.into()))?;
        logits.extend(output[0].to_array_view::<f32>()?.iter().copied());
    }
    let found = ArrayD::from_shape_vec(expected.shape(), logits)?;
    let max_difference = found
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0_f32, f32::max);
    let (ours, theirs) = (argmax_rows(&expected), argmax_rows(&found));
    let same = ours.iter().zip(&theirs).filter(|(a, b)| a == b).count();
    println!(
        "{arch} ({onnx}: ONNX opset {OPSET_VERSION}, IR version {IR_VERSION}) in tract, {n} \
         held-out images: {same}/{n} predicted classes as tapegrad's, max |logit difference| \
         {max_difference:.3e}"
    );
    if let [dir] = rest {
        let dir = Path::new(dir);
        std::fs::create_dir_all(dir)?;
        write_npy(&dir.join("images.npy"), &data.test_x.clone().into_dyn())?;
        write_npy(&dir.join("logits.npy"), &expected)?;
        println!("images.npy and logits.npy written to {}", dir.display());
    }
    Ok(())
}

/// `array` as a NumPy `.npy` file (format version 1.0, little-endian `f32`, C order).
fn write_npy(path: &Path, array: &ArrayD<f32>) -> std::io::Result<()> {
    let dims: Vec<String> = array.shape().iter().map(|d| d.to_string()).collect();
    let shape = match dims.as_slice() {
        [one] => format!("({one},)"),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    // The magic string, version and header length take 10 bytes; the header is padded with
    // spaces so that the data starts at a multiple of 64, and ends with a newline.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend(array.iter().flat_map(|v| v.to_le_bytes()));
    std::fs::write(path, bytes)
}
