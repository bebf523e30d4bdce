//! The JSON form of a [`Value`]: how values are written where JSON is the
//! language (HTTP bodies, the command line, test vectors).
//!
//! JSON's `null`, booleans, strings and arrays are themselves. A number is
//! an integer if its text has no fraction and no exponent (`1`), else a
//! float (`1.0`, `1e3`). What JSON cannot say takes an object with one key:
//!
//! - `{"$float": "nan" | "inf" | "-inf"}`;
//! - `{"$int": "<decimal>"}` for an integer below -2^63 (JSON numbers past
//!   64 bits do not survive most parsers);
//! - `{"$bytes": "<base64, standard alphabet, padded>"}`;
//! - `{"$ref": "<the object id, 64 hex digits>"}`;
//! - `{"$map": [[key, value], ...]}` for a map with a key that is not a
//!   string, or whose only key starts with `$`.
//!
//! Any other object is a map with string keys.

use crate::ObjectId;
use crate::value::Value;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Number, Value as Json};

/// Why JSON is not a value's JSON form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonError(pub String);

impl core::fmt::Display for JsonError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

impl core::error::Error for JsonError {}

fn err(why: impl Into<String>) -> JsonError {
    JsonError(why.into())
}

impl Value {
    /// The value `json` writes in the JSON form.
    pub fn from_json(json: &Json) -> Result<Value, JsonError> {
        Ok(match json {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => number(n)?,
            Json::String(s) => Value::Str(s.clone()),
            Json::Array(items) => Value::List(
                items
                    .iter()
                    .map(Value::from_json)
                    .collect::<Result<_, _>>()?,
            ),
            Json::Object(o) => object(o)?,
        })
    }

    /// The JSON form of the value.
    pub fn to_json(&self) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(i) => match (u64::try_from(*i), i64::try_from(*i)) {
                (Ok(u), _) => Json::Number(u.into()),
                (_, Ok(s)) => Json::Number(s.into()),
                _ => tagged("$int", i.to_string().into()),
            },
            Value::Float(x) if x.is_nan() => tagged("$float", "nan".into()),
            Value::Float(x) if x.is_infinite() => {
                tagged("$float", if *x > 0.0 { "inf" } else { "-inf" }.into())
            }
            Value::Float(x) => Json::Number(Number::from_f64(*x).expect("finite")),
            Value::Str(s) => Json::String(s.clone()),
            Value::Bytes(b) => tagged("$bytes", BASE64.encode(b).into()),
            Value::List(items) => Json::Array(items.iter().map(Value::to_json).collect()),
            Value::Map(entries) => {
                let plain = entries.iter().all(|(k, _)| matches!(k, Value::Str(_)))
                    && !(entries.len() == 1
                        && matches!(&entries[0].0, Value::Str(k) if k.starts_with('$')));
                if plain {
                    let mut o = Map::new();
                    for (k, v) in entries {
                        if let Value::Str(k) = k {
                            o.insert(k.clone(), v.to_json());
                        }
                    }
                    Json::Object(o)
                } else {
                    let pairs = entries
                        .iter()
                        .map(|(k, v)| Json::Array(alloc::vec![k.to_json(), v.to_json()]))
                        .collect();
                    tagged("$map", Json::Array(pairs))
                }
            }
            Value::Ref(id) => tagged("$ref", hex(&id.0).into()),
        }
    }
}

fn tagged(key: &str, value: Json) -> Json {
    let mut o = Map::new();
    o.insert(key.into(), value);
    Json::Object(o)
}

fn number(n: &Number) -> Result<Value, JsonError> {
    // serde_json keeps whether the text had a fraction or an exponent only
    // through its kind: an integer is u64 or i64, everything else f64.
    if let Some(u) = n.as_u64() {
        return Ok(Value::Int(i128::from(u)));
    }
    if let Some(i) = n.as_i64() {
        return Ok(Value::Int(i128::from(i)));
    }
    n.as_f64()
        .map(Value::Float)
        .ok_or_else(|| err(alloc::format!("the number {n} is out of range")))
}

fn object(o: &Map<String, Json>) -> Result<Value, JsonError> {
    if o.len() == 1 {
        let (key, v) = o.iter().next().expect("one entry");
        let text = || {
            v.as_str()
                .ok_or_else(|| err(alloc::format!("`{key}` takes a string")))
        };
        match key.as_str() {
            "$float" => {
                return Ok(Value::Float(match text()? {
                    "nan" => f64::NAN,
                    "inf" => f64::INFINITY,
                    "-inf" => f64::NEG_INFINITY,
                    other => {
                        return Err(err(alloc::format!(
                            "`$float` is \"nan\", \"inf\" or \"-inf\", not {other:?}"
                        )));
                    }
                }));
            }
            "$int" => {
                return text()?
                    .parse::<i128>()
                    .map(Value::Int)
                    .map_err(|_| err("`$int` takes a decimal integer"));
            }
            "$bytes" => {
                return BASE64
                    .decode(text()?)
                    .map(Value::Bytes)
                    .map_err(|e| err(alloc::format!("`$bytes` is not base64: {e}")));
            }
            "$ref" => {
                let id = unhex(text()?)
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| err("`$ref` takes an object id: 64 hex digits"))?;
                return Ok(Value::Ref(ObjectId(id)));
            }
            "$map" => {
                let pairs = v
                    .as_array()
                    .ok_or_else(|| err("`$map` takes a list of [key, value] pairs"))?;
                let mut entries = Vec::with_capacity(pairs.len());
                for p in pairs {
                    match p.as_array().map(Vec::as_slice) {
                        Some([k, v]) => entries.push((Value::from_json(k)?, Value::from_json(v)?)),
                        _ => return Err(err("`$map` takes a list of [key, value] pairs")),
                    }
                }
                return Ok(Value::map(entries));
            }
            k if k.starts_with('$') => {
                return Err(err(alloc::format!(
                    "unknown `{k}`: an object with one `$` key is $float, $int, $bytes, $ref or $map"
                )));
            }
            _ => {}
        }
    }
    let mut entries = Vec::with_capacity(o.len());
    for (k, v) in o {
        entries.push((Value::Str(k.clone()), Value::from_json(v)?));
    }
    Ok(Value::map(entries))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| alloc::format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_forms_round_trip() {
        for j in [
            json!(null),
            json!(true),
            json!(1),
            json!(-1),
            json!(18446744073709551615u64),
            json!(1.5),
            json!("s"),
            json!([1, [2.5, "x"]]),
            json!({"a": 1, "b": {"c": [true]}}),
            json!({"$float": "nan"}),
            json!({"$float": "-inf"}),
            json!({"$int": "-18446744073709551616"}),
            json!({"$bytes": "AAEC/w=="}),
            json!({"$ref": "07".repeat(32)}),
            json!({"$map": [[1, "one"], ["two", 2]]}),
            json!({"$map": [["$x", 1]]}),
        ] {
            let v = Value::from_json(&j).unwrap();
            assert_eq!(v.to_json(), j, "{j}");
        }
    }

    #[test]
    fn integers_and_floats_stay_apart() {
        let one: Json = serde_json::from_str("1").unwrap();
        let one_f: Json = serde_json::from_str("1.0").unwrap();
        assert_eq!(Value::from_json(&one).unwrap(), Value::Int(1));
        assert_eq!(Value::from_json(&one_f).unwrap(), Value::Float(1.0));
        assert_eq!(
            serde_json::to_string(&Value::Float(1.0).to_json()).unwrap(),
            "1.0"
        );
    }

    #[test]
    fn bad_tagged_objects_say_what_is_wrong() {
        for (j, says) in [
            (json!({"$float": "big"}), "`$float` is"),
            (json!({"$bytes": "!!"}), "not base64"),
            (json!({"$ref": "07"}), "64 hex digits"),
            (json!({"$map": [[1]]}), "[key, value] pairs"),
            (json!({"$what": 1}), "unknown `$what`"),
        ] {
            let e = Value::from_json(&j).unwrap_err();
            assert!(e.0.contains(says), "{j}: {e}");
        }
    }
}
