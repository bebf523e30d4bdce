//! The shared test vectors (`tests/cbor-vectors.txt`): the Rust codec
//! encodes each value to exactly its bytes, decodes the bytes to the value,
//! and refuses every encoding marked `!`.
#![cfg(feature = "json")]

use wray_abi::value::Value;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn vectors() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/cbor-vectors.txt");
    std::fs::read_to_string(path).unwrap()
}

/// Equal, with NaN equal to NaN.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => {
            x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())
        }
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|(a, b)| same(&a.0, &b.0) && same(&a.1, &b.1))
        }
        _ => a == b,
    }
}

#[test]
fn every_vector_encodes_decodes_and_round_trips() {
    let (mut good, mut bad) = (0, 0);
    for line in vectors()
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        if let Some(rest) = line.strip_prefix('!') {
            let (bytes, why) = rest.split_once('\t').unwrap();
            assert!(
                Value::decode(&hex(bytes)).is_err(),
                "{bytes} ({why}) was accepted"
            );
            bad += 1;
            continue;
        }
        let (bytes, json) = line.split_once('\t').unwrap();
        let want = hex(bytes);
        let value = Value::from_json(&serde_json::from_str(json).unwrap()).unwrap();
        assert_eq!(value.encode().unwrap(), want, "{json}");
        let decoded = Value::decode(&want).unwrap();
        assert!(
            same(&decoded, &value),
            "{bytes}: {decoded:?} is not {value:?}"
        );
        good += 1;
    }
    assert!(good >= 40 && bad >= 11, "{good} vectors, {bad} refusals");
}
