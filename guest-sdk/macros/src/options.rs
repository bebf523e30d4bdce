//! Default options in the attribute: `#[wray::remote(max_retries = 5)]`,
//! and the bare flag `pure` of a function (`#[wray::remote(pure)]`: its
//! calls are memoized, `docs/memo.md`).

use proc_macro2::TokenStream as TokenStream2;
use quote::quote;
use syn::parse::Parser;
use syn::{Lit, LitBool, LitInt};

/// Which item the options are for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum For {
    Task,
    Actor,
    /// An actor's impl block: options go on its struct.
    ActorImpl,
}

/// What an attribute says: statements setting `__wray_o`'s fields, and
/// whether the function is declared pure.
pub(crate) struct Parsed {
    pub sets: TokenStream2,
    pub pure: bool,
}

/// Parses `key = value, ...` (and, for a function, `pure`) into statements
/// setting `__wray_o`'s fields.
pub(crate) fn parse(attr: TokenStream2, target: For) -> syn::Result<Parsed> {
    let mut sets = Vec::new();
    let mut pure = false;
    let allowed: &[&str] = match target {
        For::Task => &[
            "pure",
            "max_retries",
            "retry_exceptions",
            "timeout_ms",
            "memory_limit",
            "allow_recompute",
        ],
        For::Actor => &[
            "max_restarts",
            "max_task_retries",
            "timeout_ms",
            "memory_limit",
        ],
        For::ActorImpl => &[],
    };
    let parser = syn::meta::parser(|meta| {
        let key = meta
            .path
            .get_ident()
            .map(|i| i.to_string())
            .unwrap_or_default();
        if !allowed.contains(&key.as_str()) {
            let msg = match target {
                For::ActorImpl => {
                    "an actor's options go on its struct: #[wray::remote(max_restarts = 2)]"
                        .to_string()
                }
                _ => format!(
                    "unknown option `{key}`; the options here are {}",
                    allowed.join(", ")
                ),
            };
            return Err(meta.error(msg));
        }
        if key == "pure" {
            if !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
                return Err(meta.error("`pure` takes no value: #[wray::remote(pure)]"));
            }
            pure = true;
            sets.push(quote!(__wray_o.memo = ::core::option::Option::Some(true);));
            return Ok(());
        }
        let field = syn::Ident::new(&key, meta.path.span());
        let value: Lit = meta.value()?.parse()?;
        let set = match (key.as_str(), value) {
            ("retry_exceptions" | "allow_recompute", Lit::Bool(LitBool { value, .. })) => {
                quote!(::core::option::Option::Some(#value))
            }
            ("max_retries" | "max_restarts" | "max_task_retries", Lit::Int(i)) => {
                let v: i32 = int(&i)?;
                quote!(::core::option::Option::Some(#v))
            }
            ("timeout_ms" | "memory_limit", Lit::Int(i)) => {
                let v: u64 = int(&i)?;
                quote!(::core::option::Option::Some(#v))
            }
            (_, other) => {
                return Err(syn::Error::new_spanned(
                    other,
                    if matches!(key.as_str(), "retry_exceptions" | "allow_recompute") {
                        "expected `true` or `false`"
                    } else {
                        "expected an integer"
                    },
                ));
            }
        };
        sets.push(quote!(__wray_o.#field = #set;));
        Ok(())
    });
    parser.parse2(attr)?;
    Ok(Parsed {
        sets: quote!(#(#sets)*),
        pure,
    })
}

fn int<T: std::str::FromStr>(lit: &LitInt) -> syn::Result<T>
where
    T::Err: std::fmt::Display,
{
    lit.base10_parse()
}

use syn::spanned::Spanned;
