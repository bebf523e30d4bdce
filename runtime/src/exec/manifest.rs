//! A module's manifest: what its functions take and return, read from its
//! `wray:manifest` custom section (a CBOR sequence of records, one per
//! function; `docs/abi.md`, "Manifest"). A module without one is untyped:
//! it runs, and its calls are not checked before they run.

use crate::objects::arg::TaskArg;
use crate::objects::blob::Encoding;
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

    /// Refuses a call with `n` arguments when the function takes another
    /// number.
    pub(crate) fn check_arity(&self, n: usize) -> Result<(), String> {
        let want = self.params.len();
        if want == n {
            return Ok(());
        }
        Err(format!(
            "`{}` takes {want} argument{}, not {n}",
            self.describe(),
            if want == 1 { "" } else { "s" },
        ))
    }

    /// Refuses a cross-language value of kind `kind` (`int`, `str`, ...)
    /// as argument `at`, when its parameter's declared type does not take
    /// it.
    pub(crate) fn check_kind(&self, at: usize, kind: &str) -> Result<(), String> {
        let Some((param, declared)) = self.params.get(at) else {
            return self.check_arity(at + 1);
        };
        if wray_abi::value::fits(kind, declared) {
            return Ok(());
        }
        Err(format!(
            "argument `{param}` of `{}` must be {}, not {}",
            self.describe(),
            article(declared),
            article(kind)
        ))
    }

    /// Checks a call a guest submitted, before it is queued: the arity,
    /// and, for a function taking cross-language values, the kind of each
    /// value passed inline (objects passed by reference are checked when
    /// they are ready: [`check_encodings`](Self::check_encodings)).
    pub(crate) fn check_call(&self, args: &[TaskArg]) -> Result<(), String> {
        self.check_arity(args.len())?;
        if self.value_encoding() != Encoding::Cbor {
            return Ok(());
        }
        for (at, arg) in args.iter().enumerate() {
            if let TaskArg::Value(blob) = arg
                && let Some(bytes) = blob.loaded()
            {
                let value = Value::decode(&bytes).map_err(|e| {
                    format!(
                        "argument {at} of `{}` is not a cross-language value: {e}",
                        self.describe()
                    )
                })?;
                self.check_kind(at, value.kind())?;
            }
        }
        Ok(())
    }

    /// How its values are encoded.
    pub(crate) fn value_encoding(&self) -> Encoding {
        Encoding::of_manifest(&self.encoding)
    }

    /// Refuses an argument object recorded as written in another encoding
    /// than the function's (an rkyv object handed to a C function, a CBOR
    /// one to a Rust function taking rkyv values): read, it would be
    /// garbage. Objects of unknown encoding pass; the guest checks them.
    pub(crate) fn check_encodings(
        &self,
        args: impl Iterator<Item = Encoding>,
    ) -> Result<(), String> {
        let want = self.value_encoding();
        for (i, got) in args.enumerate() {
            if got == want || got == Encoding::Raw || want == Encoding::Raw {
                continue;
            }
            let param = self
                .params
                .get(i)
                .map_or_else(|| i.to_string(), |(n, _)| format!("`{n}`"));
            let (what, takes) = match got {
                Encoding::Rkyv => (
                    "an rkyv object (written by Rust)",
                    "cross-language (CBOR) values",
                ),
                _ => (
                    "a cross-language (CBOR) object",
                    "rkyv values, which only Rust writes",
                ),
            };
            return Err(format!(
                "argument {param} of `{}` is {what}, but the function takes {takes}",
                self.describe()
            ));
        }
        Ok(())
    }
}

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

/// A wasm binary's sections: id, and where the body starts and ends.
fn sections(wasm: &[u8]) -> Result<Vec<(u8, usize, usize)>, String> {
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
        out.push((id, at, end));
        at = end;
    }
    Ok(out)
}

/// A custom section body's name.
fn custom_name(body: &[u8]) -> Option<&str> {
    let mut p = 0;
    let n = leb(body, &mut p).ok()?;
    std::str::from_utf8(body.get(p..p.checked_add(n)?)?).ok()
}

/// The custom sections named `name` in a wasm binary, in order.
fn custom_sections<'a>(wasm: &'a [u8], name: &str) -> Result<Vec<&'a [u8]>, String> {
    let mut out = Vec::new();
    for (id, start, end) in sections(wasm)? {
        let body = &wasm[start..end];
        if id == 0 && custom_name(body) == Some(name) {
            let mut p = 0;
            let n = leb(body, &mut p)?;
            out.push(&body[p + n..]);
        }
    }
    Ok(out)
}

/// The signatures a module's bytes declare (none without a manifest).
pub fn read(wasm: &[u8]) -> Result<Vec<Signature>, String> {
    let mut out = Vec::new();
    for section in custom_sections(wasm, MANIFEST_SECTION)? {
        let records = Value::decode_sequence(section).map_err(|e| format!("its manifest: {e}"))?;
        for r in records {
            out.push(
                signature(&r).ok_or_else(|| {
                    format!("its manifest has a malformed record: {}", r.to_json())
                })?,
            );
        }
    }
    Ok(out)
}

/// `an int`, `a str`: a type named in a sentence.
fn article(kind: &str) -> String {
    match kind {
        "int" | "any" => format!("an {kind}"),
        "null" | "bytes" => kind.to_string(),
        _ => format!("a {kind}"),
    }
}

/// The types a manifest may name (`docs/abi.md`, "Manifest").
pub const TYPES: [&str; 10] = [
    "null", "bool", "int", "float", "str", "bytes", "list", "map", "ref", "any",
];

/// `wasm` with `records` as its manifest: any `wray:manifest` sections it
/// had are dropped, and one holding the records is appended. Each record
/// is checked as the host checks it when it loads the module. This is
/// `wray manifest`: how guests whose compilers cannot emit custom sections
/// (Go) or CBOR (C) get one.
pub fn embed(wasm: &[u8], records: &[Value]) -> Result<Vec<u8>, String> {
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        return Err("not a wasm module".into());
    }
    let mut payload = Vec::new();
    for r in records {
        signature(r).ok_or_else(|| format!("a malformed record: {}", r.to_json()))?;
        r.encode_into(&mut payload)
            .map_err(|e| format!("a record does not encode: {e}"))?;
    }
    let mut out = wasm[..8].to_vec();
    for (id, start, end) in sections(wasm)? {
        let is_manifest = id == 0 && custom_name(&wasm[start..end]) == Some(MANIFEST_SECTION);
        if !is_manifest {
            out.push(id);
            leb_write(&mut out, end - start);
            out.extend_from_slice(&wasm[start..end]);
        }
    }
    let mut body = Vec::new();
    leb_write(&mut body, MANIFEST_SECTION.len());
    body.extend_from_slice(MANIFEST_SECTION.as_bytes());
    body.extend_from_slice(&payload);
    out.push(0);
    leb_write(&mut out, body.len());
    out.extend_from_slice(&body);
    Ok(out)
}

fn leb_write(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
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
    let sig = Signature {
        kind: text("kind")?,
        name: text("name")?,
        class: text("class"),
        params,
        returns: text("returns").unwrap_or_else(|| "any".into()),
        encoding: text("encoding").unwrap_or_else(|| "cbor".into()),
        pure: matches!(get("pure"), Some(Value::Bool(true))),
    };
    let known = |t: &String| TYPES.contains(&t.as_str());
    let well_formed = !sig.name.is_empty()
        && match sig.kind.as_str() {
            "task" => sig.class.is_none(),
            "actor" | "method" => sig.class.as_ref().is_some_and(|c| !c.is_empty()),
            _ => false,
        }
        && sig.params.iter().all(|(n, t)| !n.is_empty() && known(t))
        && known(&sig.returns)
        && matches!(sig.encoding.as_str(), "rkyv" | "cbor");
    well_formed.then_some(sig)
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
    fn embedding_replaces_a_modules_manifest_and_reads_back() {
        let old = record("old");
        let wasm = module_with(&[("wray:manifest", &old), ("other", b"x")]);
        let new = Value::decode(&record("add")).unwrap();
        let out = embed(&wasm, std::slice::from_ref(&new)).unwrap();
        let sigs = read(&out).unwrap();
        assert_eq!(sigs.len(), 1, "the old record is gone");
        assert_eq!(sigs[0].describe(), "add(a: int) -> int");
        assert_eq!(
            custom_sections(&out, "other").unwrap(),
            vec![b"x".as_slice()]
        );
        // Embedding again gives the same bytes.
        assert_eq!(embed(&out, &[new]).unwrap(), out);
        assert!(embed(b"not wasm", &[]).is_err());
    }

    #[test]
    fn records_naming_unknown_kinds_or_types_are_malformed() {
        let s = |v: &str| Value::Str(v.into());
        let rec = |kind: &str, class: Option<&str>, ty: &str, encoding: &str| {
            let mut e = vec![
                (s("kind"), s(kind)),
                (s("name"), s("f")),
                (
                    s("params"),
                    Value::List(vec![Value::List(vec![s("a"), s(ty)])]),
                ),
                (s("encoding"), s(encoding)),
            ];
            if let Some(c) = class {
                e.push((s("class"), s(c)));
            }
            Value::map(e)
        };
        let wasm = module_with(&[]);
        assert!(embed(&wasm, &[rec("task", None, "int", "cbor")]).is_ok());
        assert!(embed(&wasm, &[rec("method", Some("C"), "list", "rkyv")]).is_ok());
        for bad in [
            rec("job", None, "int", "cbor"),
            rec("task", None, "integer", "cbor"),
            rec("task", None, "int", "json"),
            rec("method", None, "int", "cbor"),
            rec("task", Some("C"), "int", "cbor"),
        ] {
            let e = embed(&wasm, std::slice::from_ref(&bad)).unwrap_err();
            assert!(e.contains("malformed record"), "{e}");
        }
    }

    #[test]
    fn a_malformed_manifest_is_an_error() {
        assert!(read(&module_with(&[("wray:manifest", &[0xff])])).is_err());
        let not_a_record = Value::Int(1).encode().unwrap();
        assert!(read(&module_with(&[("wray:manifest", &not_a_record)])).is_err());
    }
}
