//! ONNX export: what the file holds (opset, IR version, the dynamic batch axis, initializers
//! named and valued as the checkpoint's tensors) and the errors that name what cannot be
//! exported. Runtimes run the exported files in `onnx-check/` (tract, against tapegrad's
//! outputs), a package of its own so that tract is not built for this suite.

use std::collections::BTreeMap;

use ndarray::ArrayD;
use prost::Message;
use tapegrad_autograd::{Param, Tape, Var};
use tapegrad_nn::Module;
use tapegrad_nn::layers::{
    Activation, BatchNorm, Conv2d, Dense, Dropout, Flatten, Gru, Nonlinearity, Reshape, Residual,
    Rnn, Sequential,
};
use tapegrad_nn::model::Model;
use tapegrad_nn::onnx::proto::{DimensionValue, ModelProto, ValueInfoProto};
use tapegrad_nn::onnx::{self, ExportError};

/// A fresh folder in the system temp directory for `name`, removed by the caller.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tapegrad-onnx-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The tutorial's MLP (`tapegrad::models::tutorial_mlp`).
fn mlp() -> Sequential<f32> {
    Sequential::new()
        .add(Flatten::new())
        .add(Dense::new(128).activation(Activation::Relu))
        .add(Dense::new(10))
}

/// The dimensions of a graph input's or output's type.
fn dims(value: &ValueInfoProto) -> Vec<DimensionValue> {
    let tensor = value.r#type.as_ref().unwrap().tensor_type.as_ref().unwrap();
    assert_eq!(tensor.elem_type, onnx::proto::FLOAT);
    let shape = tensor.shape.as_ref().unwrap();
    shape.dim.iter().map(|d| d.value.clone().unwrap()).collect()
}

#[test]
fn the_file_has_opset_17_a_dynamic_batch_axis_and_named_nodes() {
    let model = mlp().with_input_shape(&[28, 28]);
    let file = onnx::to_model(&model, &[28, 28]).unwrap();
    assert_eq!((file.ir_version, file.opset_import[0].version), (8, 17));
    assert_eq!(file.opset_import[0].domain, "");
    assert_eq!(file.producer_name, "tapegrad");
    let graph = file.graph.unwrap();
    let batch = DimensionValue::DimParam("batch".to_string());
    assert_eq!(graph.input[0].name, "input");
    let fixed = DimensionValue::DimValue;
    assert_eq!(dims(&graph.input[0]), [batch.clone(), fixed(28), fixed(28)]);
    assert_eq!(graph.output[0].name, "output");
    assert_eq!(dims(&graph.output[0]), [batch, fixed(10)]);
    let names: Vec<&str> = graph.node.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "flatten_0/Flatten",
            "dense_0/MatMul",
            "dense_0/Add",
            "dense_0/Relu",
            "dense_1/MatMul",
            "dense_1/Add"
        ]
    );
    // The last node writes the graph's output; every node reads values written before it.
    assert_eq!(graph.node[5].output, ["output"]);
    assert_eq!(
        graph.node[1].input,
        ["flatten_0/Flatten_output_0", "dense_0.kernel"]
    );
}

#[test]
fn initializers_are_the_checkpoint_tensors_by_path() {
    let model = Sequential::new()
        .add(Reshape::new(&[2, 4, 4]))
        .add(Conv2d::new(3, 3).padding(1))
        .add(BatchNorm::new())
        .add(Dropout::new(0.5))
        .add(Flatten::new())
        .add(Dense::new(4))
        .with_input_shape(&[32]);
    // A train-mode pass moves the running statistics away from their initial values.
    {
        let tape = Tape::new();
        let x = ArrayD::from_shape_fn(vec![6, 32], |ix| (ix[0] * 32 + ix[1]) as f32 / 100.0);
        let _ = model.forward(tape.constant(x));
    }
    let dir = scratch("state");
    let checkpoint = dir.join("model.safetensors");
    model.save(&checkpoint).unwrap();
    let saved: BTreeMap<String, Vec<f32>> = tapegrad_nn::io::read_weights::<f32>(&checkpoint)
        .unwrap()
        .into_iter()
        .map(|(name, value)| (name, value.iter().copied().collect()))
        .collect();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(saved.contains_key("batch_norm_0.running_var"));

    let graph = onnx::to_model(&model, &[32]).unwrap().graph.unwrap();
    let exported: BTreeMap<String, Vec<f32>> = graph
        .initializer
        .iter()
        .map(|t| {
            assert_eq!(t.data_type, onnx::proto::FLOAT);
            let values = t
                .raw_data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect();
            (t.name.clone(), values)
        })
        .collect();
    assert_eq!(exported, saved);
}

/// `tanh(x) * scale`, a custom layer without an export rule.
struct ScaledTanh {
    scale: Param<f32>,
}

impl Module<f32> for ScaledTanh {
    fn forward<'t>(&'t self, x: Var<'t, f32>) -> Var<'t, f32> {
        x.tanh() * x.tape().param(&self.scale)
    }
    tapegrad_nn::register!(f32; param scale);
}

fn scaled_tanh() -> ScaledTanh {
    ScaledTanh {
        scale: Param::new("scale", ArrayD::from_elem(vec![3], 0.5)),
    }
}

#[test]
fn a_custom_layer_without_a_rule_is_named() {
    let model = Sequential::<f32>::new()
        .add(Dense::new(3))
        .add(scaled_tanh())
        .with_input_shape(&[4]);
    let err = onnx::to_model(&model, &[4]).unwrap_err();
    let ExportError::Unsupported { layer, kind } = &err else {
        panic!("expected Unsupported, got {err}")
    };
    assert_eq!(layer, "scaled_tanh_0");
    assert!(kind.ends_with("ScaledTanh"), "{kind}");
    assert_eq!(
        err.to_string(),
        format!(
            "layer `scaled_tanh_0` ({kind}) has no ONNX export rule: implement \
             `Module::export_onnx` for it, adding its nodes to the graph (see \
             `tapegrad_nn::onnx`)"
        )
    );
    // Inside a container that adds no path segment of its own, the container's path names it.
    let nested = Sequential::<f32>::new()
        .add(Residual::new(scaled_tanh()))
        .with_input_shape(&[3]);
    let err = onnx::to_model(&nested, &[3]).unwrap_err();
    assert!(matches!(&err, ExportError::Unsupported { layer, .. } if layer == "residual_0"));
}

#[test]
fn time_major_recurrent_layers_are_refused_by_name() {
    let model = Sequential::<f32>::new()
        .add(Dense::new(3))
        .add(Gru::new(3, 4).batch_first(false))
        .with_input_shape(&[5, 3]);
    let err = onnx::to_model(&model, &[5, 3]).unwrap_err();
    assert!(
        matches!(&err, ExportError::Unexportable { layer, .. } if layer == "gru_0"),
        "{err}"
    );
    assert!(err.to_string().contains("batch_first(false)"), "{err}");
}

#[test]
fn an_elman_rnn_carries_its_nonlinearity() {
    // tract reads every `RNN` node as tanh (it ignores `activations`); ONNX Runtime reads
    // the attribute (`onnx-check/check.py`).
    let relu = Sequential::<f32>::new()
        .add(
            Rnn::new(3, 4)
                .nonlinearity(Nonlinearity::Relu)
                .bidirectional(true),
        )
        .with_input_shape(&[6, 3]);
    let graph = onnx::to_model(&relu, &[6, 3]).unwrap().graph.unwrap();
    let node = graph.node.iter().find(|n| n.op_type == "RNN").unwrap();
    let attribute = |name: &str| node.attribute.iter().find(|a| a.name == name).unwrap();
    assert_eq!(
        attribute("activations").strings,
        [b"Relu".to_vec(), b"Relu".to_vec()]
    );
    assert_eq!(
        attribute("direction").s.as_deref(),
        Some(&b"bidirectional"[..])
    );
    assert_eq!(attribute("hidden_size").i, Some(4));
}

#[test]
fn an_unbuilt_model_a_wrong_shape_and_an_unwritable_path() {
    let unbuilt = Sequential::<f32>::new().add(Dense::new(3));
    let err = onnx::to_model(&unbuilt, &[4]).unwrap_err();
    assert!(
        matches!(&err, ExportError::NotBuilt { layer } if layer == "dense_0"),
        "{err}"
    );

    let built = Sequential::<f32>::new()
        .add(Dense::new(3))
        .with_input_shape(&[4]);
    let err = onnx::to_model(&built, &[5]).unwrap_err();
    assert!(matches!(err, ExportError::InputShape(_)), "{err}");

    let path = std::env::temp_dir()
        .join(format!("tapegrad-onnx-missing-{}", std::process::id()))
        .join("model.onnx");
    let err = onnx::export(&built, &[4], &path).unwrap_err();
    assert!(matches!(err, ExportError::Write(_)), "{err}");
    assert!(!path.exists());
}

#[test]
fn model_export_onnx_writes_the_built_model_once_built() {
    let dir = scratch("model");
    let path = dir.join("mlp.onnx");
    let mut model = Model::new(mlp());
    let err = model.export_onnx(&path).unwrap_err();
    assert!(matches!(err, ExportError::UnknownInputShape), "{err}");
    model.build(&[28, 28], 5).unwrap();
    model.export_onnx(&path).unwrap();
    let file = ModelProto::decode(&std::fs::read(&path).unwrap()[..]).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(file, onnx::to_model(model.module(), &[28, 28]).unwrap());
    let graph = file.graph.unwrap();
    let names: Vec<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "dense_0.kernel",
            "dense_0.bias",
            "dense_1.kernel",
            "dense_1.bias"
        ]
    );
}
