//! A custom layer's own export rule, run in the runtime.

use ndarray::ArrayD;
use rand::rngs::StdRng;
use tapegrad_autograd::{Param, Var};
use tapegrad_nn::Module;
use tapegrad_nn::layers::{Activation, Dense, Sequential};
use tapegrad_nn::onnx::{ExportError, OnnxGraph, OnnxValue, proto::ModelProto};

use super::{assert_runs_the_same, batches};

/// `tanh(x) * scale`, one learned scale per feature, with its rule: a `Tanh` node and a
/// `Mul` by the parameter.
struct ScaledTanh {
    scale: Param<f32>,
}

impl Module<f32> for ScaledTanh {
    fn forward<'t>(&'t self, x: Var<'t, f32>) -> Var<'t, f32> {
        x.tanh() * x.tape().param(&self.scale)
    }
    fn build(&mut self, input_shape: &[usize], _rng: &mut StdRng) -> Vec<usize> {
        input_shape.to_vec()
    }
    fn export_onnx(
        &self,
        graph: &mut OnnxGraph<f32>,
        x: &OnnxValue,
    ) -> Result<OnnxValue, ExportError> {
        let tanh = graph.node("Tanh", &[&x.name], vec![]);
        let scale = graph.param(&self.scale);
        let y = graph.node("Mul", &[&tanh, &scale], vec![]);
        Ok(OnnxValue::new(y, x.shape.clone()))
    }
    tapegrad_nn::register!(f32; param scale);
}

#[test]
fn a_custom_layer_with_its_rule_runs_in_the_runtime() {
    let scale = ArrayD::from_shape_vec(vec![3], vec![0.5, -1.5, 2.0]).unwrap();
    let mut model = Sequential::new()
        .add(Dense::new(3).activation(Activation::Elu(1.0)))
        .add(ScaledTanh {
            scale: Param::new("scale", scale),
        })
        .with_input_shape(&[4]);
    let bytes = assert_runs_the_same(&mut model, &[4], &batches(&[4]));
    let file = <ModelProto as prost::Message>::decode(&bytes[..]).unwrap();
    let graph = file.graph.unwrap();
    let names: Vec<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        ["dense_0.kernel", "dense_0.bias", "scaled_tanh_0.scale"]
    );
}
