//! [`OnnxGraph`]: the graph an export appends nodes to, and [`OnnxValue`], the batch a
//! layer's rule reads and returns.

use std::collections::{HashMap, HashSet};
use std::marker::PhantomData;

use ndarray::ArrayD;
use tapegrad_autograd::{Float, Param};

use super::attr;
use super::proto::{
    AttributeProto, Dimension, DimensionValue, GraphProto, NodeProto, TensorProto,
    TensorShapeProto, TensorTypeProto, TypeProto, ValueInfoProto,
};
use super::proto::{BOOL, DOUBLE, FLOAT, INT64};
use crate::buffer::Buffer;

/// The name of the exported graph's input.
pub const INPUT_NAME: &str = "input";
/// The name of the exported graph's output.
pub const OUTPUT_NAME: &str = "output";
/// The name of the dynamic first axis of the input and output (the batch).
pub const BATCH_AXIS: &str = "batch";

/// A batch in an exported graph: the value's name and the shape of each sample (without
/// the first axis, the batch, whose size is given at run time): what a layer's
/// [`Module::export_onnx`](crate::Module::export_onnx) reads and returns, as
/// [`Module::build`](crate::Module::build) reads and returns a sample shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnnxValue {
    /// The value's name in the graph.
    pub name: String,
    /// The shape of one sample (without the batch axis).
    pub shape: Vec<usize>,
}

impl OnnxValue {
    /// The value `name`, with samples of shape `shape`.
    pub fn new(name: impl Into<String>, shape: Vec<usize>) -> Self {
        OnnxValue {
            name: name.into(),
            shape,
        }
    }
}

/// An ONNX graph being written: nodes in the order they are added (each reads values
/// added before it), the parameters and buffers they read as initializers named by their
/// paths, and constants as `Constant` nodes.
///
/// Layer rules ([`Module::export_onnx`](crate::Module::export_onnx)) add nodes with
/// [`node`](OnnxGraph::node) and read parameters with [`param`](OnnxGraph::param). Each
/// node is named after the layer path it is added in (`dense_0/MatMul`) and writes values
/// named after it (`dense_0/MatMul_output_0`). Element type: `f32` models give `FLOAT`
/// tensors, `f64` models `DOUBLE`.
///
/// ```
/// use tapegrad_nn::onnx::{OnnxGraph, attr};
///
/// let mut graph = OnnxGraph::<f32>::new();
/// let half = graph.scalar(0.5);
/// let y = graph.node("Mul", &["input", &half], vec![]);
/// let z = graph.node("Softmax", &[&y], vec![attr::int("axis", -1)]);
/// assert_eq!(z, "Softmax_output_0");
/// assert_eq!(graph.nodes().len(), 3); // the constant, Mul and Softmax
/// ```
pub struct OnnxGraph<T: Float> {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    /// Every name given to a node, a value or an initializer.
    names: HashSet<String>,
    /// The initializer of each parameter or buffer added, by its address.
    tensors: HashMap<usize, String>,
    float: PhantomData<T>,
}

impl<T: Float> Default for OnnxGraph<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float> OnnxGraph<T> {
    /// An empty graph, whose input is [`INPUT_NAME`].
    pub fn new() -> Self {
        OnnxGraph {
            nodes: Vec::new(),
            initializers: Vec::new(),
            names: [INPUT_NAME, OUTPUT_NAME]
                .into_iter()
                .map(String::from)
                .collect(),
            tensors: HashMap::new(),
            float: PhantomData,
        }
    }

    /// The element type of the model's tensors: `FLOAT` for `f32`, `DOUBLE` for `f64`.
    pub fn float_type() -> i32 {
        if T::DTYPE == "F32" { FLOAT } else { DOUBLE }
    }

    /// The nodes added so far.
    pub fn nodes(&self) -> &[NodeProto] {
        &self.nodes
    }

    /// The initializers added so far.
    pub fn initializers(&self) -> &[TensorProto] {
        &self.initializers
    }

    /// Adds an `op_type` node reading `inputs` (value names, `""` for an optional input left
    /// out) and returns the name of its output.
    pub fn node(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        attributes: Vec<AttributeProto>,
    ) -> String {
        self.node_with_outputs(op_type, inputs, 1, attributes)
            .pop()
            .expect("one output")
    }

    /// Adds an `op_type` node with `outputs` outputs and returns their names.
    pub fn node_with_outputs(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        outputs: usize,
        attributes: Vec<AttributeProto>,
    ) -> Vec<String> {
        let base = match tapegrad_autograd::scope::scope_path() {
            Some(path) => format!("{path}/{op_type}"),
            None => op_type.to_string(),
        };
        let name = self.fresh_name(&base);
        let output: Vec<String> = (0..outputs)
            .map(|i| self.fresh_name(&format!("{name}_output_{i}")))
            .collect();
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: output.clone(),
            name,
            op_type: op_type.to_string(),
            attribute: attributes,
        });
        output
    }

    /// The initializer holding `param`'s value, named by the parameter's name (its path in
    /// the model, as in checkpoints), added the first time the parameter is read.
    pub fn param(&mut self, param: &Param<T>) -> String {
        let key = std::ptr::from_ref(param) as usize;
        self.initializer(key, param.name(), param.value())
    }

    /// The initializer holding `buffer`'s value (BatchNorm's running statistics), named by
    /// the buffer's name.
    pub fn buffer(&mut self, buffer: &Buffer<T>) -> String {
        let key = std::ptr::from_ref(buffer) as usize;
        self.initializer(key, buffer.name(), &buffer.value())
    }

    fn initializer(&mut self, key: usize, name: &str, value: &ArrayD<T>) -> String {
        if let Some(name) = self.tensors.get(&key) {
            return name.clone();
        }
        // Two layers outside any container may both call their kernel `kernel`.
        let name = self.fresh_name(name);
        self.initializers.push(float_tensor(&name, value));
        self.tensors.insert(key, name.clone());
        name
    }

    /// A `Constant` node holding `value`, in the model's element type.
    pub fn constant(&mut self, value: &ArrayD<T>) -> String {
        self.constant_tensor(float_tensor("", value))
    }

    /// A `Constant` node holding the scalar `value`, in the model's element type.
    pub fn scalar(&mut self, value: f64) -> String {
        self.constant(&ArrayD::from_elem(vec![], T::from_f64(value)))
    }

    /// A `Constant` node holding the 1-D `INT64` tensor `values` (shapes, axes, indices).
    pub fn ints(&mut self, values: &[i64]) -> String {
        self.constant_tensor(TensorProto {
            dims: vec![values.len() as i64],
            data_type: INT64,
            name: String::new(),
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        })
    }

    /// A `Constant` node holding the `BOOL` tensor `values` (masks).
    pub fn bools(&mut self, values: &ArrayD<bool>) -> String {
        self.constant_tensor(TensorProto {
            dims: values.shape().iter().map(|&d| d as i64).collect(),
            data_type: BOOL,
            name: String::new(),
            raw_data: values.iter().map(|&b| u8::from(b)).collect(),
        })
    }

    /// A `ConstantOfShape` node: a tensor of the shape the 1-D `INT64` value `shape` holds
    /// at run time, filled with `value` in the model's element type.
    pub fn constant_of_shape(&mut self, shape: &str, value: f64) -> String {
        let value = float_tensor("", &ArrayD::from_elem(vec![1], T::from_f64(value)));
        self.node(
            "ConstantOfShape",
            &[shape],
            vec![attr::tensor("value", value)],
        )
    }

    fn constant_tensor(&mut self, tensor: TensorProto) -> String {
        self.node("Constant", &[], vec![attr::tensor("value", tensor)])
    }

    /// `name`, or `name_1`, `name_2`, … : the first not taken yet.
    fn fresh_name(&mut self, name: &str) -> String {
        let mut candidate = name.to_string();
        let mut k = 0;
        while self.names.contains(&candidate) {
            k += 1;
            candidate = format!("{name}_{k}");
        }
        self.names.insert(candidate.clone());
        candidate
    }

    /// The finished graph: its input is [`INPUT_NAME`] with samples of `input_shape`, its
    /// output `output` renamed [`OUTPUT_NAME`] (through an `Identity` node when the output
    /// is the input itself), both with a dynamic first axis named [`BATCH_AXIS`].
    pub(crate) fn finish(
        mut self,
        name: &str,
        input_shape: &[usize],
        output: &OnnxValue,
    ) -> GraphProto {
        if output.name == INPUT_NAME {
            self.nodes.push(NodeProto {
                input: vec![INPUT_NAME.to_string()],
                output: vec![OUTPUT_NAME.to_string()],
                name: "Identity".to_string(),
                op_type: "Identity".to_string(),
                attribute: Vec::new(),
            });
        } else {
            for node in &mut self.nodes {
                for value in node.input.iter_mut().chain(node.output.iter_mut()) {
                    if *value == output.name {
                        *value = OUTPUT_NAME.to_string();
                    }
                }
            }
        }
        let float = Self::float_type();
        GraphProto {
            node: self.nodes,
            name: name.to_string(),
            initializer: self.initializers,
            input: vec![batch_value(INPUT_NAME, float, input_shape)],
            output: vec![batch_value(OUTPUT_NAME, float, &output.shape)],
        }
    }
}

/// A value of type `elem_type` with a dynamic first axis and samples of `shape`.
fn batch_value(name: &str, elem_type: i32, shape: &[usize]) -> ValueInfoProto {
    let batch = DimensionValue::DimParam(BATCH_AXIS.to_string());
    let dims =
        std::iter::once(batch).chain(shape.iter().map(|&d| DimensionValue::DimValue(d as i64)));
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type,
                shape: Some(TensorShapeProto {
                    dim: dims.map(|value| Dimension { value: Some(value) }).collect(),
                }),
            }),
        }),
    }
}

/// `value` as a tensor of the model's element type, little-endian.
fn float_tensor<T: Float>(name: &str, value: &ArrayD<T>) -> TensorProto {
    let raw_data = if T::DTYPE == "F32" {
        value
            .iter()
            .flat_map(|&v| (Float::to_f64(v) as f32).to_le_bytes())
            .collect()
    } else {
        value
            .iter()
            .flat_map(|&v| Float::to_f64(v).to_le_bytes())
            .collect()
    };
    TensorProto {
        dims: value.shape().iter().map(|&d| d as i64).collect(),
        data_type: OnnxGraph::<T>::float_type(),
        name: name.to_string(),
        raw_data,
    }
}
