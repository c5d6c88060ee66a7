//! The main jobs' networks exported and run by tract: the Fashion-MNIST MLP and CNN of
//! `tapegrad::models` (through `Model::export_onnx`, as `fashion_mnist --export` writes
//! them), and the makemore models that export (bigram, bag of words, Transformer: custom
//! modules with their own rules).

use ndarray::ArrayD;
use tapegrad::models::makemore::{Config, Kind, language_model};
use tapegrad::models::{small_cnn, tutorial_mlp};
use tapegrad::nn::Module;
use tapegrad::nn::model::Model;
use tapegrad::rand::SeedableRng;
use tapegrad::rand::rngs::StdRng;

use super::{TOLERANCE, assert_runs_the_same, max_difference, randomize, run_tract, uniform};

/// Images of 28 × 28 pixels in `[0, 1)`, in batches of 1, 5 and 32.
fn images() -> Vec<ArrayD<f32>> {
    [1, 5, 32]
        .iter()
        .map(|&batch| uniform(batch, &[28, 28], 0.0, 1.0, batch as u64))
        .collect()
}

#[test]
fn the_main_jobs_mlp_and_cnn_predict_the_same_logits() {
    let dir = std::env::temp_dir().join(format!("tapegrad-onnx-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, network) in [("mlp", tutorial_mlp()), ("cnn", small_cnn(28, 28))] {
        let mut model = Model::new(network);
        model.build(&[28, 28], 3).unwrap();
        let path = dir.join(format!("{name}.onnx"));
        model.export_onnx(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        for x in images() {
            let expected = model.predict(&x, 16).unwrap();
            let difference = max_difference(&run_tract(&bytes, &x), &expected);
            assert!(
                difference <= TOLERANCE,
                "{name}: logits differ by {difference:e}"
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn makemore_bigram_bag_of_words_and_transformer() {
    let config = Config {
        n_layer: 2,
        n_head: 2,
        n_embd: 16,
        n_embd2: 16,
        ..Config::new(27, 8)
    };
    for kind in [Kind::Bigram, Kind::Bow, Kind::Transformer] {
        let mut model = language_model::<f32>(kind, &config);
        model.build(&[8], &mut StdRng::seed_from_u64(1));
        tapegrad::nn::module::assign_paths(&mut model);
        // The bigram's table starts at zeros: every parameter redrawn.
        randomize(&mut model, -1.0, 1.0, 2);
        let rows: Vec<ArrayD<f32>> = [1, 4]
            .iter()
            .map(|&n| uniform(n, &[8], 0.0, 27.0, n as u64).mapv(f32::floor))
            .collect();
        assert_runs_the_same(&mut model, &[8], &rows);
    }
}
