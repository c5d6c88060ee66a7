//! `SummaryWriter`: what is written reads back equal.

use ndarray::{Array1, Array3, ArrayView3};
use prost::Message;
use tapegrad_nn::tensorboard::proto::{
    DT_STRING, EventKind, HParamsData, HParamsPluginData, ProtoValueKind, STATUS_SUCCESS,
    TextPluginData, ValueKind,
};
use tapegrad_nn::tensorboard::{BUCKETS, HParamValue, ImageLayout, SummaryError, SummaryWriter};

use super::{event_files, read_events, run_values, scalars, scratch_dir};

#[test]
fn scalars_read_back_with_their_steps_and_wall_times() {
    let dir = scratch_dir("scalars");
    let mut writer = SummaryWriter::new(&dir).unwrap();
    let values = [0.5, -1.25, 3.0e-7, 1e30, f64::NAN];
    for (step, &v) in values.iter().enumerate() {
        writer.add_scalar("Loss/train", v, step * 10).unwrap();
    }
    writer.add_scalar("other", 2.0, 7).unwrap();
    writer.flush().unwrap();

    let read = scalars(&dir, "Loss/train");
    assert_eq!(read.len(), values.len());
    for ((step, x), (i, &v)) in read.iter().zip(values.iter().enumerate()) {
        assert_eq!(*step, (i * 10) as i64);
        assert!(*x == v as f32 || (x.is_nan() && v.is_nan()), "{x} != {v}");
    }
    assert_eq!(scalars(&dir, "other"), [(7, 2.0)]);
    let events = read_events(writer.path());
    assert!(events.windows(2).all(|w| w[0].wall_time <= w[1].wall_time));
    assert!(events[0].wall_time > 1.6e9, "seconds since the Unix epoch");
}

#[test]
fn a_histogram_counts_every_value_and_keeps_its_statistics() {
    let dir = scratch_dir("histogram");
    let mut writer = SummaryWriter::new(&dir).unwrap();
    let values = Array1::from_shape_fn(1000, |i| ((i * 7919) % 1000) as f32 / 100.0 - 3.0);
    writer
        .add_histogram(
            "w",
            &values.view().into_shape_with_order((10, 100)).unwrap(),
            4,
        )
        .unwrap();
    writer.flush().unwrap();

    let [(step, value)] = &run_values(&dir)[..] else {
        panic!("one value")
    };
    assert_eq!((*step, value.tag.as_str()), (4, "w"));
    let Some(ValueKind::Histo(h)) = &value.value else {
        panic!("a histogram")
    };
    let f: Vec<f64> = values.iter().map(|&v| v as f64).collect();
    assert_eq!(h.min, -3.0);
    assert_eq!(h.max, f.iter().cloned().fold(f64::MIN, f64::max));
    assert_eq!(h.num, 1000.0);
    assert!((h.sum - f.iter().sum::<f64>()).abs() < 1e-9);
    assert!((h.sum_squares - f.iter().map(|v| v * v).sum::<f64>()).abs() < 1e-6);
    assert_eq!(h.bucket.len(), BUCKETS + 1);
    assert_eq!(h.bucket_limit.len(), BUCKETS + 1);
    assert_eq!(h.bucket[0], 0.0, "the first bucket ends at the minimum");
    assert!(h.bucket_limit.windows(2).all(|w| w[0] < w[1]));
    // Each bucket counts the values of its interval (the lowest in the first one).
    for i in 1..=BUCKETS {
        let (lo, hi) = (h.bucket_limit[i - 1], h.bucket_limit[i]);
        let expected = f
            .iter()
            .filter(|&&v| (v >= lo && v < hi) || (i == BUCKETS && v == hi))
            .count();
        assert_eq!(h.bucket[i], expected as f64, "bucket {i} [{lo}, {hi})");
    }
}

/// The pixels (row-major height, width, channels) and color type of a PNG file.
fn decode_png(bytes: &[u8]) -> (Vec<u8>, png::ColorType, u32, u32) {
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    pixels.truncate(info.buffer_size());
    (pixels, info.color_type, info.width, info.height)
}

#[test]
fn images_decode_back_to_their_pixels() {
    let dir = scratch_dir("image");
    let mut writer = SummaryWriter::new(&dir).unwrap();
    // RGB bytes, (height, width, channels) = (2, 3, 3).
    let rgb = Array3::from_shape_fn((2, 3, 3), |(h, w, c)| (h * 100 + w * 10 + c) as u8);
    writer
        .add_image("rgb", rgb.view(), ImageLayout::Hwc, 0)
        .unwrap();
    // Grayscale floats, (channels, height, width) = (1, 2, 2), clipped to [0, 1].
    let gray = Array3::from_shape_vec((1, 2, 2), vec![0.0f32, 0.5, 1.0, 7.0]).unwrap();
    writer
        .add_image("gray", gray.view(), ImageLayout::Chw, 1)
        .unwrap();
    // RGBA as (channels, height, width) = (4, 1, 2).
    let rgba = Array3::from_shape_fn((4, 1, 2), |(c, _, w)| (c * 2 + w) as u8 * 20);
    writer
        .add_image("rgba", rgba.view(), ImageLayout::Chw, 2)
        .unwrap();
    writer.flush().unwrap();

    let images: Vec<_> = run_values(&dir)
        .into_iter()
        .map(|(step, v)| match v.value {
            Some(ValueKind::Image(image)) => (step, v.tag, image),
            other => panic!("not an image: {other:?}"),
        })
        .collect();
    assert_eq!(images.len(), 3);

    let (_, tag, image) = &images[0];
    assert_eq!(
        (tag.as_str(), image.height, image.width, image.colorspace),
        ("rgb", 2, 3, 3)
    );
    let (pixels, color, w, h) = decode_png(&image.encoded_image_string);
    assert_eq!((color, w, h), (png::ColorType::Rgb, 3, 2));
    assert_eq!(pixels, rgb.iter().copied().collect::<Vec<_>>());

    let (step, _, image) = &images[1];
    assert_eq!(
        (*step, image.height, image.width, image.colorspace),
        (1, 2, 2, 1)
    );
    let (pixels, color, ..) = decode_png(&image.encoded_image_string);
    assert_eq!(color, png::ColorType::Grayscale);
    assert_eq!(pixels, [0, 127, 255, 255]);

    let (_, _, image) = &images[2];
    let (pixels, color, w, h) = decode_png(&image.encoded_image_string);
    assert_eq!((color, w, h), (png::ColorType::Rgba, 2, 1));
    let hwc: ArrayView3<u8> = rgba.view().permuted_axes([1, 2, 0]);
    assert_eq!(pixels, hwc.iter().copied().collect::<Vec<_>>());
    assert_eq!(
        pixels[..4],
        [0, 40, 80, 120],
        "the first pixel's four channels"
    );
}

#[test]
fn text_is_a_string_tensor_for_the_text_plugin() {
    let dir = scratch_dir("text");
    let mut writer = SummaryWriter::new(&dir).unwrap();
    let text = "| a | b |\n|---|---|\n| 1 | 2 |\nünïcode";
    writer.add_text("notes", text, 3).unwrap();
    writer.flush().unwrap();

    let [(step, value)] = &run_values(&dir)[..] else {
        panic!("one value")
    };
    assert_eq!((*step, value.tag.as_str()), (3, "notes/text_summary"));
    let plugin = value
        .metadata
        .as_ref()
        .unwrap()
        .plugin_data
        .as_ref()
        .unwrap();
    assert_eq!(plugin.plugin_name, "text");
    assert_eq!(
        TextPluginData::decode(&plugin.content[..]).unwrap().version,
        0
    );
    let Some(ValueKind::Tensor(tensor)) = &value.value else {
        panic!("a tensor")
    };
    assert_eq!(tensor.dtype, DT_STRING);
    assert_eq!(tensor.tensor_shape.as_ref().unwrap().dim[0].size, 1);
    assert_eq!(tensor.string_val, [text.as_bytes()]);
}

#[test]
fn hparams_go_to_a_run_of_their_own_with_the_session_and_metrics() {
    let dir = scratch_dir("hparams");
    let mut writer = SummaryWriter::new(&dir).unwrap();
    let run = writer
        .add_hparams(
            &[
                ("lr", 1e-3.into()),
                ("optimizer", "adam".into()),
                ("dropout", true.into()),
            ],
            &[("hparam/accuracy", 0.75)],
        )
        .unwrap();
    assert_eq!(run.parent().unwrap(), dir);
    assert_eq!(event_files(&run).len(), 1);

    let values = run_values(&run);
    let data = |tag: &str| {
        let (_, v) = values.iter().find(|(_, v)| v.tag == tag).unwrap();
        let plugin = v.metadata.as_ref().unwrap().plugin_data.as_ref().unwrap();
        assert_eq!(plugin.plugin_name, "hparams");
        let data = HParamsPluginData::decode(&plugin.content[..]).unwrap();
        assert_eq!(data.version, 0);
        data.data.unwrap()
    };
    let HParamsData::Experiment(experiment) = data("_hparams_/experiment") else {
        panic!()
    };
    let names: Vec<_> = experiment
        .hparam_infos
        .iter()
        .map(|h| (h.name.as_str(), h.r#type))
        .collect();
    assert_eq!(names, [("lr", 3), ("optimizer", 1), ("dropout", 2)]);
    assert_eq!(
        experiment.metric_infos[0].name.as_ref().unwrap().tag,
        "hparam/accuracy"
    );
    let HParamsData::SessionStartInfo(start) = data("_hparams_/session_start_info") else {
        panic!()
    };
    assert_eq!(
        start.hparams["lr"].kind,
        Some(ProtoValueKind::NumberValue(1e-3))
    );
    assert_eq!(
        start.hparams["optimizer"].kind,
        Some(ProtoValueKind::StringValue("adam".into()))
    );
    assert_eq!(
        start.hparams["dropout"].kind,
        Some(ProtoValueKind::BoolValue(true))
    );
    let HParamsData::SessionEndInfo(end) = data("_hparams_/session_end_info") else {
        panic!()
    };
    assert_eq!(end.status, STATUS_SUCCESS);
    assert_eq!(scalars(&run, "hparam/accuracy"), [(0, 0.75)]);
    assert_eq!(HParamValue::from(3usize), HParamValue::Number(3.0));
}

#[test]
fn invalid_images_and_histograms_without_finite_values_are_errors_that_write_nothing() {
    let dir = scratch_dir("invalid");
    let mut writer = SummaryWriter::new(&dir).unwrap();
    let two_channels = Array3::<u8>::zeros((2, 4, 4));
    let err = writer
        .add_image("im", two_channels.view(), ImageLayout::Chw, 0)
        .unwrap_err();
    assert!(
        matches!(&err, SummaryError::InvalidImage { tag, shape, .. } if tag == "im" && shape == &[2, 4, 4]),
        "{err}"
    );
    let empty = Array3::<f32>::zeros((0, 4, 3));
    assert!(
        writer
            .add_image("im", empty.view(), ImageLayout::Hwc, 0)
            .is_err()
    );
    let nan = Array1::from_elem(3, f64::NAN);
    let err = writer.add_histogram("h", &nan, 0).unwrap_err();
    assert!(
        matches!(&err, SummaryError::NoFiniteValues { tag } if tag == "h"),
        "{err}"
    );
    writer.flush().unwrap();
    assert!(run_values(&dir).is_empty());
    assert_eq!(read_events(writer.path()).len(), 1, "only the file version");
    assert!(matches!(
        read_events(writer.path())[0].what,
        Some(EventKind::FileVersion(_))
    ));
}

#[test]
fn two_writers_in_one_folder_write_two_files_and_the_file_is_flushed_when_dropped() {
    let dir = scratch_dir("two");
    let mut a = SummaryWriter::new(&dir).unwrap();
    let mut b = SummaryWriter::new(&dir).unwrap();
    assert_ne!(a.path(), b.path());
    a.add_scalar("a", 1.0, 0).unwrap();
    b.add_scalar("b", 2.0, 0).unwrap();
    drop((a, b));
    assert_eq!(event_files(&dir).len(), 2);
    assert_eq!(scalars(&dir, "a"), [(0, 1.0)]);
    assert_eq!(scalars(&dir, "b"), [(0, 2.0)]);
}
