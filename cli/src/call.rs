//! `wray call`: call one function of a module from the command line, with
//! cross-language values (deterministic CBOR) in and out.

use crate::RuntimeArgs;
use crate::client::Client;
use anyhow::Context;
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use wray_runtime::node::types::{ModuleUploaded, ObjectAnswer, TaskCall};
use wray_runtime::{Error, Value};

#[derive(Args)]
pub struct CallArgs {
    /// The module (a `.wasm` file) whose function to call.
    module: PathBuf,
    /// The function (a remote function, `wray:task/<name>`).
    function: String,
    /// The arguments, one per parameter: JSON (`1` an integer, `1.5` a
    /// float, `true`, `null`, `[1, 2]`, `{"k": "v"}`, `"text"`), `@FILE` for
    /// the bytes of a file, and anything that is not JSON as a string
    /// (`hello`). Negative numbers are values; after `--`, so is anything
    /// starting with `-`.
    #[arg(value_name = "ARGS", allow_negative_numbers = true)]
    args: Vec<String>,
    /// Print the result as JSON (a string result quoted); without it, a
    /// string result prints as its text.
    #[arg(long)]
    json: bool,
    /// Call it on the node at this address (see `wray start`): the module
    /// is uploaded (once: by digest) and the call goes over HTTP.
    #[arg(long, value_name = "URL")]
    address: Option<String>,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

/// One command-line argument as a value, for a parameter of type
/// `declared`: a `str` parameter takes the text as typed (`42` is the
/// string "42"; a JSON string still reads as its text).
pub fn parse_typed(arg: &str, declared: Option<&str>) -> anyhow::Result<Value> {
    match declared {
        Some("str") if !arg.starts_with('@') => Ok(Value::Str(
            serde_json::from_str::<String>(arg).unwrap_or_else(|_| arg.to_string()),
        )),
        _ => parse_arg(arg),
    }
}

/// One command-line argument as a value.
pub fn parse_arg(arg: &str) -> anyhow::Result<Value> {
    if let Some(path) = arg.strip_prefix('@') {
        let bytes = std::fs::read(Path::new(path))
            .with_context(|| format!("cannot read the argument file {path}"))?;
        return Ok(Value::Bytes(bytes));
    }
    match serde_json::from_str::<serde_json::Value>(arg) {
        Ok(json) => Value::from_json(&json).map_err(|e| anyhow::anyhow!("the argument {arg}: {e}")),
        Err(_) => Ok(Value::Str(arg.to_string())),
    }
}

/// A result as `wray call` prints it.
pub fn format_result(value: &Value, json: bool) -> String {
    match value {
        Value::Str(s) if !json => s.clone(),
        v => v.to_json().to_string(),
    }
}

pub fn main(args: CallArgs) -> anyhow::Result<ExitCode> {
    // The arguments are read as the manifest declares the parameters.
    let bytes = wray_runtime::Module::read_file(&args.module)?;
    let signature = wray_runtime::read_manifest(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.module.display()))?
        .into_iter()
        .find(|s| s.kind == "task" && s.name == args.function);
    let values = args
        .args
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let declared = signature
                .as_ref()
                .and_then(|s| s.params.get(i))
                .map(|(_, t)| t.as_str());
            parse_typed(a, declared)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if let Some(address) = &args.address {
        return on_node(&args, address, &bytes, &values);
    }
    let rt = args.runtime.builder().build()?;
    let module = rt.load_file(&args.module)?;
    let call = values
        .iter()
        .fold(rt.task(&module, &args.function), |b, v| b.arg_value(v));
    let result = call.submit().and_then(|r| rt.get_value(&r));
    match result {
        Ok(v) => {
            println!("{}", format_result(&v, args.json));
            Ok(ExitCode::SUCCESS)
        }
        Err(Error::Task(e)) => {
            eprintln!("error: {}", format!("{e:?}").trim_end());
            Ok(ExitCode::FAILURE)
        }
        Err(Error::Decode { .. }) => anyhow::bail!(
            "`{}` returned a value that is not a cross-language value (deterministic \
             CBOR): a Rust guest's function takes and returns rkyv values, which \
             `wray call` cannot read",
            args.function
        ),
        Err(e) => Err(e.into()),
    }
}

/// `wray call --address`: upload, then `POST /api/tasks?wait`.
fn on_node(
    args: &CallArgs,
    address: &str,
    bytes: &[u8],
    values: &[Value],
) -> anyhow::Result<ExitCode> {
    let c = Client::new(Some(address));
    let up: ModuleUploaded = c.post_wasm("/api/modules", &[], bytes)?;
    let call = TaskCall {
        module: up.digest,
        function: args.function.clone(),
        args: values.iter().map(Value::to_json).collect(),
    };
    let answer: ObjectAnswer = c.post("/api/tasks?wait=3600", &serde_json::to_value(call)?)?;
    let Some(result) = answer.result else {
        anyhow::bail!(
            "`{}` has not finished after an hour: its result will be object {}",
            args.function,
            answer.object_id
        );
    };
    let value = Value::from_json(&result).map_err(|e| anyhow::anyhow!("the node's answer: {e}"))?;
    println!("{}", format_result(&value, args.json));
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_json_files_or_text() {
        assert_eq!(parse_arg("1").unwrap(), Value::Int(1));
        assert_eq!(parse_arg("-2.5").unwrap(), Value::Float(-2.5));
        assert_eq!(
            parse_arg("[1, \"a\"]").unwrap(),
            Value::List(vec![Value::Int(1), Value::Str("a".into())])
        );
        assert_eq!(parse_arg("\"1\"").unwrap(), Value::Str("1".into()));
        assert_eq!(parse_arg("hello").unwrap(), Value::Str("hello".into()));
        assert_eq!(parse_arg("null").unwrap(), Value::Null);
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("b");
        std::fs::write(&f, [0, 1, 255]).unwrap();
        assert_eq!(
            parse_arg(&format!("@{}", f.display())).unwrap(),
            Value::Bytes(vec![0, 1, 255])
        );
        assert!(parse_arg("@/no/such/file").is_err());
        assert!(parse_arg("{\"$ref\": \"zz\"}").is_err());
        // A str parameter takes the text as typed.
        assert_eq!(
            parse_typed("42", Some("str")).unwrap(),
            Value::Str("42".into())
        );
        assert_eq!(
            parse_typed("\"42\"", Some("str")).unwrap(),
            Value::Str("42".into())
        );
        assert_eq!(parse_typed("42", Some("int")).unwrap(), Value::Int(42));
        assert_eq!(parse_typed("42", None).unwrap(), Value::Int(42));
    }

    #[test]
    fn a_string_result_prints_as_text_unless_json() {
        assert_eq!(format_result(&Value::Str("hi".into()), false), "hi");
        assert_eq!(format_result(&Value::Str("hi".into()), true), "\"hi\"");
        assert_eq!(format_result(&Value::Float(6.75), false), "6.75");
        assert_eq!(format_result(&Value::Int(3), true), "3");
    }
}
