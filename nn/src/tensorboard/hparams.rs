//! The hyper-parameters of a run as the HParams plugin reads them: an experiment, a
//! session start and a session end, as PyTorch's `add_hparams` writes them.

use prost::Message;

use super::proto::{
    DATA_TYPE_BOOL, DATA_TYPE_FLOAT64, DATA_TYPE_STRING, Experiment, HParamInfo, HParamsData,
    HParamsPluginData, MetricInfo, MetricName, PluginData, ProtoValue, ProtoValueKind,
    STATUS_SUCCESS, SessionEndInfo, SessionStartInfo, Summary, SummaryMetadata, SummaryValue,
};

/// The value of a hyper-parameter: a number, a string or a boolean.
///
/// ```
/// use tapegrad_nn::tensorboard::HParamValue;
///
/// let hparams: [(&str, HParamValue); 3] =
///     [("lr", 1e-3.into()), ("optimizer", "adam".into()), ("dropout", true.into())];
/// assert_eq!(hparams[0].1, HParamValue::Number(1e-3));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum HParamValue {
    /// A number (integers too).
    Number(f64),
    /// A string.
    Text(String),
    /// A boolean.
    Bool(bool),
}

macro_rules! number_from {
    ($($ty:ty),*) => {$(
        impl From<$ty> for HParamValue {
            fn from(value: $ty) -> Self {
                HParamValue::Number(value as f64)
            }
        }
    )*};
}

number_from!(f64, f32, i32, i64, u32, u64, usize);

impl From<&str> for HParamValue {
    fn from(value: &str) -> Self {
        HParamValue::Text(value.to_string())
    }
}

impl From<String> for HParamValue {
    fn from(value: String) -> Self {
        HParamValue::Text(value)
    }
}

impl From<bool> for HParamValue {
    fn from(value: bool) -> Self {
        HParamValue::Bool(value)
    }
}

/// The tags of the three summaries (the `tensorboard.plugins.hparams.metadata` names).
pub(crate) const EXPERIMENT_TAG: &str = "_hparams_/experiment";
pub(crate) const SESSION_START_INFO_TAG: &str = "_hparams_/session_start_info";
pub(crate) const SESSION_END_INFO_TAG: &str = "_hparams_/session_end_info";

/// The experiment, session start and session end summaries of `hparams` and the metrics
/// named `metrics`, started and ended at `now` (seconds since the Unix epoch).
pub(crate) fn hparams_summaries(
    hparams: &[(&str, HParamValue)],
    metrics: &[&str],
    now: f64,
) -> [Summary; 3] {
    let infos = hparams
        .iter()
        .map(|(name, value)| HParamInfo {
            name: name.to_string(),
            r#type: match value {
                HParamValue::Number(_) => DATA_TYPE_FLOAT64,
                HParamValue::Text(_) => DATA_TYPE_STRING,
                HParamValue::Bool(_) => DATA_TYPE_BOOL,
            },
        })
        .collect();
    let values = hparams
        .iter()
        .map(|(name, value)| {
            let kind = match value {
                HParamValue::Number(x) => ProtoValueKind::NumberValue(*x),
                HParamValue::Text(s) => ProtoValueKind::StringValue(s.clone()),
                HParamValue::Bool(b) => ProtoValueKind::BoolValue(*b),
            };
            (name.to_string(), ProtoValue { kind: Some(kind) })
        })
        .collect();
    let experiment = Experiment {
        hparam_infos: infos,
        metric_infos: metrics
            .iter()
            .map(|tag| MetricInfo {
                name: Some(MetricName {
                    group: String::new(),
                    tag: tag.to_string(),
                }),
            })
            .collect(),
    };
    [
        (EXPERIMENT_TAG, HParamsData::Experiment(experiment)),
        (
            SESSION_START_INFO_TAG,
            HParamsData::SessionStartInfo(SessionStartInfo {
                hparams: values,
                start_time_secs: now,
            }),
        ),
        (
            SESSION_END_INFO_TAG,
            HParamsData::SessionEndInfo(SessionEndInfo {
                status: STATUS_SUCCESS,
                end_time_secs: now,
            }),
        ),
    ]
    .map(|(tag, data)| plugin_summary(tag, data))
}

/// A summary of one value of the hparams plugin: metadata only, no value.
fn plugin_summary(tag: &str, data: HParamsData) -> Summary {
    let content = HParamsPluginData {
        version: 0,
        data: Some(data),
    };
    Summary {
        value: vec![SummaryValue {
            tag: tag.to_string(),
            metadata: Some(SummaryMetadata {
                plugin_data: Some(PluginData {
                    plugin_name: "hparams".to_string(),
                    content: content.encode_to_vec(),
                }),
            }),
            value: None,
        }],
    }
}
