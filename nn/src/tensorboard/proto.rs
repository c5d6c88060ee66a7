//! The protocol buffer messages of TensorBoard event files, written by hand with `prost`'s
//! derive (no `protoc`): only the messages and fields tapegrad writes, with the field numbers
//! of TensorFlow's `event.proto`, `summary.proto`, `tensor.proto`, `tensor_shape.proto`,
//! TensorBoard's `plugins/text/plugin_data.proto`, `plugins/hparams/plugin_data.proto` and
//! `api.proto`, and protobuf's `struct.proto`. Readers of the files decode them with the
//! same structs:
//!
//! ```
//! use prost::Message;
//! use tapegrad_nn::tensorboard::proto::{Event, EventKind};
//!
//! let event = Event { wall_time: 1.5, step: 3, what: Some(EventKind::FileVersion("brain.Event:2".into())) };
//! let bytes = event.encode_to_vec();
//! assert_eq!(Event::decode(&bytes[..])?, event);
//! # Ok::<(), prost::DecodeError>(())
//! ```

use std::collections::BTreeMap;

/// `tensorflow.DataType` `DT_STRING`: a tensor of byte strings.
pub const DT_STRING: i32 = 7;
/// `tensorboard.hparams.DataType` `DATA_TYPE_STRING`.
pub const DATA_TYPE_STRING: i32 = 1;
/// `tensorboard.hparams.DataType` `DATA_TYPE_BOOL`.
pub const DATA_TYPE_BOOL: i32 = 2;
/// `tensorboard.hparams.DataType` `DATA_TYPE_FLOAT64`.
pub const DATA_TYPE_FLOAT64: i32 = 3;
/// `tensorboard.hparams.Status` `STATUS_SUCCESS`.
pub const STATUS_SUCCESS: i32 = 1;

/// One record of an event file (`tensorflow.Event`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    /// Seconds since the Unix epoch.
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    /// The training step the event belongs to.
    #[prost(int64, tag = "2")]
    pub step: i64,
    /// The file version (first record) or a summary.
    #[prost(oneof = "EventKind", tags = "3, 5")]
    pub what: Option<EventKind>,
}

/// What an [`Event`] holds.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum EventKind {
    /// `"brain.Event:2"`, in the first record of a file.
    #[prost(string, tag = "3")]
    FileVersion(String),
    /// Summary values.
    #[prost(message, tag = "5")]
    Summary(Summary),
}

/// A set of tagged values (`tensorflow.Summary`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    /// The values.
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<SummaryValue>,
}

/// One tagged value (`tensorflow.Summary.Value`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryValue {
    /// The series' name (`"epoch_loss"`, `"dense_0.kernel/histogram"`).
    #[prost(string, tag = "1")]
    pub tag: String,
    /// Which plugin reads the value (text, hparams); none for scalars, histograms, images.
    #[prost(message, optional, tag = "9")]
    pub metadata: Option<SummaryMetadata>,
    /// The value.
    #[prost(oneof = "ValueKind", tags = "2, 4, 5, 8")]
    pub value: Option<ValueKind>,
}

/// The value of a [`SummaryValue`].
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum ValueKind {
    /// A scalar (`simple_value`).
    #[prost(float, tag = "2")]
    SimpleValue(f32),
    /// An encoded image.
    #[prost(message, tag = "4")]
    Image(Image),
    /// A histogram (`histo`).
    #[prost(message, tag = "5")]
    Histo(HistogramProto),
    /// A tensor (text summaries).
    #[prost(message, tag = "8")]
    Tensor(TensorProto),
}

/// An encoded image (`tensorflow.Summary.Image`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Image {
    /// Height in pixels.
    #[prost(int32, tag = "1")]
    pub height: i32,
    /// Width in pixels.
    #[prost(int32, tag = "2")]
    pub width: i32,
    /// 1 grayscale, 3 RGB, 4 RGBA.
    #[prost(int32, tag = "3")]
    pub colorspace: i32,
    /// The PNG file.
    #[prost(bytes = "vec", tag = "4")]
    pub encoded_image_string: Vec<u8>,
}

/// A histogram (`tensorflow.HistogramProto`): bucket `i` counts the values in
/// `(bucket_limit[i - 1], bucket_limit[i]]`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HistogramProto {
    /// The smallest value.
    #[prost(double, tag = "1")]
    pub min: f64,
    /// The largest value.
    #[prost(double, tag = "2")]
    pub max: f64,
    /// The number of values.
    #[prost(double, tag = "3")]
    pub num: f64,
    /// Their sum.
    #[prost(double, tag = "4")]
    pub sum: f64,
    /// The sum of their squares.
    #[prost(double, tag = "5")]
    pub sum_squares: f64,
    /// The right edge of each bucket.
    #[prost(double, repeated, tag = "6")]
    pub bucket_limit: Vec<f64>,
    /// The count of each bucket.
    #[prost(double, repeated, tag = "7")]
    pub bucket: Vec<f64>,
}

/// Which plugin reads a value (`tensorflow.SummaryMetadata`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryMetadata {
    /// The plugin and its data.
    #[prost(message, optional, tag = "1")]
    pub plugin_data: Option<PluginData>,
}

/// A plugin's name and data (`tensorflow.SummaryMetadata.PluginData`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct PluginData {
    /// `"text"`, `"hparams"`.
    #[prost(string, tag = "1")]
    pub plugin_name: String,
    /// The plugin's serialized message ([`TextPluginData`], [`HParamsPluginData`]).
    #[prost(bytes = "vec", tag = "2")]
    pub content: Vec<u8>,
}

/// A tensor (`tensorflow.TensorProto`): here a tensor of strings.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    /// The element type ([`DT_STRING`]).
    #[prost(int32, tag = "1")]
    pub dtype: i32,
    /// The shape.
    #[prost(message, optional, tag = "2")]
    pub tensor_shape: Option<TensorShapeProto>,
    /// The strings, for [`DT_STRING`].
    #[prost(bytes = "vec", repeated, tag = "8")]
    pub string_val: Vec<Vec<u8>>,
}

/// A tensor's shape (`tensorflow.TensorShapeProto`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    /// The dimensions.
    #[prost(message, repeated, tag = "2")]
    pub dim: Vec<TensorShapeDim>,
}

/// One dimension (`tensorflow.TensorShapeProto.Dim`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeDim {
    /// Its size.
    #[prost(int64, tag = "1")]
    pub size: i64,
}

/// The text plugin's data (`tensorboard.TextPluginData`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TextPluginData {
    /// 0.
    #[prost(int32, tag = "1")]
    pub version: i32,
}

/// The hparams plugin's data (`tensorboard.hparams.HParamsPluginData`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct HParamsPluginData {
    /// 0.
    #[prost(int32, tag = "1")]
    pub version: i32,
    /// The experiment, or a session's start or end.
    #[prost(oneof = "HParamsData", tags = "2, 3, 4")]
    pub data: Option<HParamsData>,
}

/// What an [`HParamsPluginData`] holds.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum HParamsData {
    /// The hyper-parameters and metrics of the experiment.
    #[prost(message, tag = "2")]
    Experiment(Experiment),
    /// A session's hyper-parameter values.
    #[prost(message, tag = "3")]
    SessionStartInfo(SessionStartInfo),
    /// A session's end.
    #[prost(message, tag = "4")]
    SessionEndInfo(SessionEndInfo),
}

/// The hyper-parameters and metrics of an experiment (`tensorboard.hparams.Experiment`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Experiment {
    /// The hyper-parameters.
    #[prost(message, repeated, tag = "4")]
    pub hparam_infos: Vec<HParamInfo>,
    /// The metrics.
    #[prost(message, repeated, tag = "5")]
    pub metric_infos: Vec<MetricInfo>,
}

/// A hyper-parameter's name and type (`tensorboard.hparams.HParamInfo`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct HParamInfo {
    /// Its name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// [`DATA_TYPE_FLOAT64`], [`DATA_TYPE_STRING`] or [`DATA_TYPE_BOOL`].
    #[prost(int32, tag = "4")]
    pub r#type: i32,
}

/// A metric (`tensorboard.hparams.MetricInfo`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricInfo {
    /// Its name.
    #[prost(message, optional, tag = "1")]
    pub name: Option<MetricName>,
}

/// A metric's name (`tensorboard.hparams.MetricName`): a scalar series `tag` in the run
/// `group`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricName {
    /// The run, relative to the session's (empty: the session's own).
    #[prost(string, tag = "1")]
    pub group: String,
    /// The scalar's tag.
    #[prost(string, tag = "2")]
    pub tag: String,
}

/// A session's hyper-parameter values (`tensorboard.hparams.SessionStartInfo`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionStartInfo {
    /// The value of each hyper-parameter, by name.
    #[prost(btree_map = "string, message", tag = "1")]
    pub hparams: BTreeMap<String, ProtoValue>,
    /// Seconds since the Unix epoch.
    #[prost(double, tag = "5")]
    pub start_time_secs: f64,
}

/// A session's end (`tensorboard.hparams.SessionEndInfo`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionEndInfo {
    /// [`STATUS_SUCCESS`].
    #[prost(int32, tag = "1")]
    pub status: i32,
    /// Seconds since the Unix epoch.
    #[prost(double, tag = "2")]
    pub end_time_secs: f64,
}

/// A number, a string or a boolean (`google.protobuf.Value`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoValue {
    /// The value.
    #[prost(oneof = "ProtoValueKind", tags = "2, 3, 4")]
    pub kind: Option<ProtoValueKind>,
}

/// What a [`ProtoValue`] holds.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum ProtoValueKind {
    /// A number.
    #[prost(double, tag = "2")]
    NumberValue(f64),
    /// A string.
    #[prost(string, tag = "3")]
    StringValue(String),
    /// A boolean.
    #[prost(bool, tag = "4")]
    BoolValue(bool),
}
