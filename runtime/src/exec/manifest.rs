//! A module's manifest: what its functions take and return, read from its
//! `wray:manifest` custom section (a CBOR sequence of records, one per
//! function; `docs/abi.md`, "Manifest"). A module without one is untyped:
//! it runs, and its calls are not checked before they run.

use wray_abi::export::MANIFEST_SECTION;
use wray_abi::value::Value;

/// One function's signature.
#[derive(Clone, Debug, PartialEq)]
pub struct Signature {
    /// `task`, `actor` (a constructor) or `method`.
    pub kind: String,
    /// The function's name (`add`; for a method, `incr`).
    pub name: String,
    /// The actor type, for constructors and methods.
    pub class: Option<String>,
    /// Each parameter's name and type (`int`, `float`, `str`, `bytes`,
    /// `list`, `map`, `ref`, `bool`, `null`, `any`).
    pub params: Vec<(String, String)>,
    /// The return type.
    pub returns: String,
    /// How its values are encoded: `rkyv` (Rust guests) or `cbor`.
    pub encoding: String,
    /// Declared pure (`"pure": true`): its calls are memoized unless a
    /// call's `memo` option says otherwise.
    pub pure: bool,
}

impl Signature {
    /// `add(a: int, b: int) -> int`.
    pub fn describe(&self) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|(n, t)| format!("{n}: {t}"))
            .collect();
        format!("{}({}) -> {}", self.name, params.join(", "), self.returns)
    }
}

/// The custom sections named `name` in a wasm binary, in order.
fn custom_sections<'a>(wasm: &'a [u8], name: &str) -> Result<Vec<&'a [u8]>, String> {
    fn leb(b: &[u8], at: &mut usize) -> Result<usize, String> {
        let (mut v, mut shift) = (0usize, 0);
        loop {
            let byte = *b.get(*at).ok_or("a section header past the end")?;
            *at += 1;
            v |= usize::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
            if shift > 28 {
                return Err("a section length too long".into());
            }
        }
    }
    let mut out = Vec::new();
    let mut at = 8; // magic and version: checked by the compiler
    while at < wasm.len() {
        let id = wasm[at];
        at += 1;
        let size = leb(wasm, &mut at)?;
        let end = at
            .checked_add(size)
            .filter(|&e| e <= wasm.len())
            .ok_or("a section past the end")?;
        if id == 0 {
            let mut p = at;
            let n = leb(wasm, &mut p)?;
            if p + n <= end && &wasm[p..p + n] == name.as_bytes() {
                out.push(&wasm[p + n..end]);
            }
        }
        at = end;
    }
    Ok(out)
}

/// The signatures a module declares (none without a manifest).
pub(crate) fn read(wasm: &[u8]) -> Result<Vec<Signature>, String> {
    let mut out = Vec::new();
    for section in custom_sections(wasm, MANIFEST_SECTION)? {
        let records = Value::decode_sequence(section).map_err(|e| format!("its manifest: {e}"))?;
        for r in records {
            out.push(
                signature(&r)
                    .ok_or_else(|| format!("its manifest has a malformed record: {r:?}"))?,
            );
        }
    }
    Ok(out)
}

fn signature(record: &Value) -> Option<Signature> {
    let Value::Map(entries) = record else {
        return None;
    };
    let get = |k: &str| {
        entries
            .iter()
            .find(|(key, _)| *key == Value::Str(k.into()))
            .map(|(_, v)| v)
    };
    let text = |k: &str| match get(k) {
        Some(Value::Str(s)) => Some(s.clone()),
        _ => None,
    };
    let Some(Value::List(params)) = get("params") else {
        return None;
    };
    let params = params
        .iter()
        .map(|p| match p {
            Value::List(pair) => match pair.as_slice() {
                [Value::Str(n), Value::Str(t)] => Some((n.clone(), t.clone())),
                _ => None,
            },
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Signature {
        kind: text("kind")?,
        name: text("name")?,
        class: text("class"),
        params,
        returns: text("returns").unwrap_or_else(|| "any".into()),
        encoding: text("encoding").unwrap_or_else(|| "cbor".into()),
        pure: matches!(get("pure"), Some(Value::Bool(true))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module_with(sections: &[(&str, &[u8])]) -> Vec<u8> {
        let mut wasm = b"\0asm\x01\0\0\0".to_vec();
        for (name, payload) in sections {
            let mut body = vec![name.len() as u8];
            body.extend_from_slice(name.as_bytes());
            body.extend_from_slice(payload);
            wasm.push(0);
            wasm.push(body.len() as u8);
            wasm.extend(body);
        }
        wasm
    }

    fn record(name: &str) -> Vec<u8> {
        let s = |v: &str| Value::Str(v.into());
        Value::map([
            (s("kind"), s("task")),
            (s("name"), s(name)),
            (
                s("params"),
                Value::List(vec![Value::List(vec![s("a"), s("int")])]),
            ),
            (s("returns"), s("int")),
        ])
        .encode()
        .unwrap()
    }

    #[test]
    fn records_of_every_manifest_section_are_read_in_order() {
        let (a, b) = (record("f"), record("g"));
        let wasm = module_with(&[
            ("wray:manifest", &a),
            ("other", b"x"),
            ("wray:manifest", &b),
        ]);
        let sigs = read(&wasm).unwrap();
        assert_eq!(sigs.len(), 2);
        assert_eq!(sigs[0].describe(), "f(a: int) -> int");
        assert_eq!(sigs[1].name, "g");
        assert_eq!(sigs[0].encoding, "cbor", "the default");
        assert!(!sigs[0].pure, "the default");
        assert!(read(&module_with(&[])).unwrap().is_empty());
    }

    #[test]
    fn a_malformed_manifest_is_an_error() {
        assert!(read(&module_with(&[("wray:manifest", &[0xff])])).is_err());
        let not_a_record = Value::Int(1).encode().unwrap();
        assert!(read(&module_with(&[("wray:manifest", &not_a_record)])).is_err());
    }
}
