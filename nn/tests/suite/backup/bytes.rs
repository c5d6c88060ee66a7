//! A snapshot's file is a function of its contents: the same state saved twice is the
//! same bytes (so backups can be compared and checksummed).

use std::fs;

use tapegrad_nn::Module;
use tapegrad_nn::layers::{Dense, Dropout, Sequential};
use tapegrad_nn::snapshot::TrainingSnapshot;
use tapegrad_optim::AdamConfig;

use super::scratch_dir;

#[test]
fn a_snapshot_saved_again_is_the_same_bytes() {
    let dir = scratch_dir("bytes");
    let model = Sequential::<f32>::new()
        .add(Dense::new(4))
        .add(Dropout::new(0.5))
        .add(Dense::new(2))
        .seed(3)
        .with_input_shape(&[3]);
    let opt = AdamConfig::new(0.01).build::<f32>().unwrap();
    // Each save builds its file's metadata anew: 8 saves would show an order that changes
    // from one to the next.
    let files: Vec<Vec<u8>> = (0..8)
        .map(|i| {
            let path = dir.join(format!("{i}.safetensors"));
            TrainingSnapshot::capture(&model, &opt)
                .unwrap()
                .at(1, 2)
                .save(&path)
                .unwrap();
            fs::read(&path).unwrap()
        })
        .collect();
    assert!(model.num_params() > 0);
    for (i, file) in files.iter().enumerate() {
        assert!(*file == files[0], "save {i} differs from save 0");
    }
    fs::remove_dir_all(dir).unwrap();
}
