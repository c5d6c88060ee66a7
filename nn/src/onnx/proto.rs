//! The protocol buffer messages of an ONNX model file, written by hand with `prost`'s
//! derive (no `protoc`): only the messages and fields tapegrad writes, with the field
//! numbers of ONNX's `onnx.proto` (proto2; a field left at its default is not written,
//! which a reader takes as the same default). Readers of the files decode them with the
//! same structs:
//!
//! ```
//! use prost::Message;
//! use tapegrad_nn::onnx::proto::{ModelProto, OperatorSetIdProto};
//!
//! let model = ModelProto {
//!     ir_version: 8,
//!     opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 17 }],
//!     ..Default::default()
//! };
//! let bytes = model.encode_to_vec();
//! assert_eq!(ModelProto::decode(&bytes[..])?, model);
//! # Ok::<(), prost::DecodeError>(())
//! ```

/// `TensorProto.DataType` `FLOAT` (`f32`).
pub const FLOAT: i32 = 1;
/// `TensorProto.DataType` `INT64`.
pub const INT64: i32 = 7;
/// `TensorProto.DataType` `BOOL`.
pub const BOOL: i32 = 9;
/// `TensorProto.DataType` `DOUBLE` (`f64`).
pub const DOUBLE: i32 = 11;

/// `AttributeProto.AttributeType`: which field of an [`AttributeProto`] holds its value.
pub mod attribute_type {
    /// `f`.
    pub const FLOAT: i32 = 1;
    /// `i`.
    pub const INT: i32 = 2;
    /// `s`.
    pub const STRING: i32 = 3;
    /// `t`.
    pub const TENSOR: i32 = 4;
    /// `floats`.
    pub const FLOATS: i32 = 6;
    /// `ints`.
    pub const INTS: i32 = 7;
    /// `strings`.
    pub const STRINGS: i32 = 8;
}

/// A model: the format's version, the operator sets it uses and its graph
/// (`onnx.ModelProto`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelProto {
    /// The IR version of the file format.
    #[prost(int64, tag = "1")]
    pub ir_version: i64,
    /// The operator sets the graph's nodes come from (the default domain `""` and its
    /// version).
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSetIdProto>,
    /// The program that wrote the file (`"tapegrad"`).
    #[prost(string, tag = "2")]
    pub producer_name: String,
    /// Its version.
    #[prost(string, tag = "3")]
    pub producer_version: String,
    /// A description.
    #[prost(string, tag = "6")]
    pub doc_string: String,
    /// The computation.
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
}

/// An operator set and its version (`onnx.OperatorSetIdProto`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct OperatorSetIdProto {
    /// `""` for the standard operators (`ai.onnx`).
    #[prost(string, tag = "1")]
    pub domain: String,
    /// The operator set's version (the opset).
    #[prost(int64, tag = "2")]
    pub version: i64,
}

/// A graph: nodes in topological order, the named constant tensors they read
/// (initializers) and the graph's inputs and outputs (`onnx.GraphProto`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct GraphProto {
    /// The nodes, each after the nodes whose outputs it reads.
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    /// The graph's name.
    #[prost(string, tag = "2")]
    pub name: String,
    /// Named constant tensors: here the model's parameters and buffers, by path.
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    /// The inputs a runtime is given.
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
    /// The outputs it computes.
    #[prost(message, repeated, tag = "12")]
    pub output: Vec<ValueInfoProto>,
}

/// One operator applied to named values (`onnx.NodeProto`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeProto {
    /// The values it reads (`""` for an optional input left out).
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    /// The values it writes.
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    /// The node's name (`"dense_0/MatMul"`).
    #[prost(string, tag = "3")]
    pub name: String,
    /// The operator (`"MatMul"`).
    #[prost(string, tag = "4")]
    pub op_type: String,
    /// Its attributes.
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
}

/// A named attribute of a node (`onnx.AttributeProto`); [`type`](AttributeProto::type)
/// says which field holds the value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttributeProto {
    /// The attribute's name (`"axis"`).
    #[prost(string, tag = "1")]
    pub name: String,
    /// One of [`attribute_type`].
    #[prost(int32, tag = "20")]
    pub r#type: i32,
    /// A float (written even when 0, as a reader checks that the field is there).
    #[prost(float, optional, tag = "2")]
    pub f: Option<f32>,
    /// An integer (written even when 0).
    #[prost(int64, optional, tag = "3")]
    pub i: Option<i64>,
    /// A string (UTF-8).
    #[prost(bytes = "vec", optional, tag = "4")]
    pub s: Option<Vec<u8>>,
    /// A tensor (`Constant`'s `value`).
    #[prost(message, optional, tag = "5")]
    pub t: Option<TensorProto>,
    /// Floats.
    #[prost(float, repeated, tag = "7")]
    pub floats: Vec<f32>,
    /// Integers.
    #[prost(int64, repeated, tag = "8")]
    pub ints: Vec<i64>,
    /// Strings (UTF-8).
    #[prost(bytes = "vec", repeated, tag = "9")]
    pub strings: Vec<Vec<u8>>,
}

/// A tensor: its shape, element type and little-endian bytes (`onnx.TensorProto`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    /// The shape (empty for a scalar).
    #[prost(int64, repeated, tag = "1")]
    pub dims: Vec<i64>,
    /// The element type ([`FLOAT`], [`DOUBLE`], [`INT64`], [`BOOL`]).
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    /// The tensor's name (an initializer's: the value nodes read it as).
    #[prost(string, tag = "8")]
    pub name: String,
    /// The elements in row-major order, little-endian.
    #[prost(bytes = "vec", tag = "9")]
    pub raw_data: Vec<u8>,
}

/// A named value and its type (`onnx.ValueInfoProto`): the graph's inputs and outputs.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueInfoProto {
    /// The value's name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Its type.
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
}

/// A value's type (`onnx.TypeProto`): here always a tensor.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProto {
    /// The tensor type.
    #[prost(message, optional, tag = "1")]
    pub tensor_type: Option<TensorTypeProto>,
}

/// A tensor's element type and shape (`onnx.TypeProto.Tensor`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorTypeProto {
    /// The element type ([`FLOAT`], [`DOUBLE`]).
    #[prost(int32, tag = "1")]
    pub elem_type: i32,
    /// The shape.
    #[prost(message, optional, tag = "2")]
    pub shape: Option<TensorShapeProto>,
}

/// A shape whose dimensions are numbers or names (`onnx.TensorShapeProto`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    /// The dimensions.
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<Dimension>,
}

/// One dimension (`onnx.TensorShapeProto.Dimension`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Dimension {
    /// Its size, or the name of a size given at run time.
    #[prost(oneof = "DimensionValue", tags = "1, 2")]
    pub value: Option<DimensionValue>,
}

/// The value of a [`Dimension`].
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum DimensionValue {
    /// A fixed size.
    #[prost(int64, tag = "1")]
    DimValue(i64),
    /// A size given at run time (`"batch"`): the same name is the same size.
    #[prost(string, tag = "2")]
    DimParam(String),
}
