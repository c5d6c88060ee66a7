//! Node attributes: `attr::int("axis", 1)`, `attr::ints("perm", &[0, 2, 1])`, ….

use super::proto::{AttributeProto, TensorProto, attribute_type};

fn named(name: &str, r#type: i32) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type,
        ..Default::default()
    }
}

/// An integer attribute.
pub fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        i: Some(value),
        ..named(name, attribute_type::INT)
    }
}

/// A list of integers.
pub fn ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        ints: values.to_vec(),
        ..named(name, attribute_type::INTS)
    }
}

/// A float attribute (ONNX's are `f32`).
pub fn float(name: &str, value: f64) -> AttributeProto {
    AttributeProto {
        f: Some(value as f32),
        ..named(name, attribute_type::FLOAT)
    }
}

/// A string attribute.
pub fn string(name: &str, value: &str) -> AttributeProto {
    AttributeProto {
        s: Some(value.as_bytes().to_vec()),
        ..named(name, attribute_type::STRING)
    }
}

/// A list of strings.
pub fn strings(name: &str, values: &[&str]) -> AttributeProto {
    AttributeProto {
        strings: values.iter().map(|s| s.as_bytes().to_vec()).collect(),
        ..named(name, attribute_type::STRINGS)
    }
}

/// A tensor attribute (`Constant`'s `value`).
pub fn tensor(name: &str, value: TensorProto) -> AttributeProto {
    AttributeProto {
        t: Some(value),
        ..named(name, attribute_type::TENSOR)
    }
}
