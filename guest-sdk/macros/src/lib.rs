//! Procedural macros of the wray guest SDK. Use them through the `wray`
//! crate (`#[wray::remote]`, `#[wray::main]`, `#[wray::value]`), whose docs
//! describe what they generate.
//!
//! The macros are thin: they check the item, report misuse with errors that
//! point at the offending tokens, and emit calls into `wray::__private`,
//! where the logic lives.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{
    FnArg, GenericArgument, Ident, Item, ItemFn, Pat, PathArguments, ReturnType, Signature, Type,
    parse_macro_input,
};

mod actor;
mod options;

use options::For;

/// See `wray::remote`.
#[proc_macro_attribute]
pub fn remote(attr: TokenStream, item: TokenStream) -> TokenStream {
    let attr = TokenStream2::from(attr);
    let original = TokenStream2::from(item.clone());
    let item = parse_macro_input!(item as Item);
    let out = match item {
        Item::Fn(f) => options::parse(attr, For::Task).and_then(|o| remote_fn(f, o)),
        Item::Struct(s) => {
            options::parse(attr, For::Actor).and_then(|o| actor::remote_struct(s, o.sets))
        }
        Item::Impl(i) => options::parse(attr, For::ActorImpl).and_then(|_| actor::remote_impl(i)),
        other => Err(syn::Error::new_spanned(
            other,
            "#[wray::remote] goes on a function (a task), or on a struct and its impl block (an actor)",
        )),
    };
    or_report(out, original)
}

/// The expansion, or the error followed by the item unchanged (so one
/// mistake is reported once, not again by every use of the item).
fn or_report(out: syn::Result<TokenStream2>, original: TokenStream2) -> TokenStream {
    match out {
        Ok(ts) => ts.into(),
        Err(e) => {
            let mut ts = e.into_compile_error();
            ts.extend(original);
            ts.into()
        }
    }
}

/// See `wray::main`.
#[proc_macro_attribute]
pub fn main(attr: TokenStream, item: TokenStream) -> TokenStream {
    let attr = TokenStream2::from(attr);
    let original = TokenStream2::from(item.clone());
    let f = parse_macro_input!(item as ItemFn);
    or_report(
        no_arguments(&attr, "main").and_then(|()| driver(f)),
        original,
    )
}

/// See `wray::value`.
#[proc_macro_attribute]
pub fn value(attr: TokenStream, item: TokenStream) -> TokenStream {
    let attr = TokenStream2::from(attr);
    let original = TokenStream2::from(item.clone());
    let item = parse_macro_input!(item as Item);
    let out = no_arguments(&attr, "value").and_then(|()| match &item {
        Item::Struct(_) | Item::Enum(_) => Ok(quote! {
            #[derive(::wray::rkyv::Archive, ::wray::rkyv::Serialize, ::wray::rkyv::Deserialize)]
            #[rkyv(crate = ::wray::rkyv)]
            #item
        }),
        other => Err(syn::Error::new_spanned(
            other,
            "#[wray::value] goes on a struct or an enum",
        )),
    });
    or_report(out, original)
}

fn no_arguments(attr: &TokenStream2, name: &str) -> syn::Result<()> {
    if attr.is_empty() {
        Ok(())
    } else {
        Err(syn::Error::new_spanned(
            attr,
            format!("#[wray::{name}] takes no arguments"),
        ))
    }
}

/// A parameter of a remote function or method: its name and type.
pub(crate) struct Param {
    pub name: Ident,
    pub ty: Type,
}

/// Checks what every remote function and method signature must satisfy and
/// returns its value parameters (after `self`, for methods).
pub(crate) fn check_signature(sig: &Signature, what: &str) -> syn::Result<Vec<Param>> {
    if let Some(a) = &sig.asyncness {
        return Err(syn::Error::new_spanned(
            a,
            format!(
                "{what} cannot be async: wray runs it on its own instance; call `wray::get` to wait"
            ),
        ));
    }
    if let Some(u) = &sig.unsafety {
        return Err(syn::Error::new_spanned(
            u,
            format!("{what} cannot be unsafe"),
        ));
    }
    if let Some(abi) = &sig.abi {
        return Err(syn::Error::new_spanned(
            abi,
            format!("{what} cannot declare an ABI"),
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new_spanned(
            &sig.generics,
            format!("{what} cannot be generic: each remote function is one wasm export"),
        ));
    }
    if let Some(v) = &sig.variadic {
        return Err(syn::Error::new_spanned(
            v,
            format!("{what} cannot be variadic"),
        ));
    }
    let mut params = Vec::new();
    for input in &sig.inputs {
        let FnArg::Typed(pt) = input else { continue };
        let name = match &*pt.pat {
            Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => pi.ident.clone(),
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    "parameters of remote functions must be plain names (`x: T`), not patterns",
                ));
            }
        };
        check_owned(&pt.ty, "parameter")?;
        params.push(Param {
            name,
            ty: (*pt.ty).clone(),
        });
    }
    if let ReturnType::Type(_, ty) = &sig.output {
        check_owned(ty, "return type")?;
    }
    Ok(params)
}

/// Refuses borrowed and opaque types, which cannot cross instances.
fn check_owned(ty: &Type, what: &str) -> syn::Result<()> {
    match ty {
        Type::Reference(r) => Err(syn::Error::new_spanned(
            r,
            format!(
                "a remote {what} must be an owned type: values are copied between sandboxed \
                 instances (use `String` for `&str`, `Vec<T>` for `&[T]`)"
            ),
        )),
        Type::ImplTrait(t) => Err(syn::Error::new_spanned(
            t,
            format!("a remote {what} must be a concrete type, not `impl Trait`"),
        )),
        Type::Paren(p) => check_owned(&p.elem, what),
        _ => Ok(()),
    }
}

/// How a function's return value becomes the call's result.
pub(crate) struct Output {
    /// The `T` of the `ObjectRef<T>` that `remote` returns.
    pub value_ty: TokenStream2,
    /// Whether the function returns `Result<T, E>`, whose `Err` fails the call.
    pub fallible: bool,
}

pub(crate) fn output(sig: &Signature) -> Output {
    match &sig.output {
        ReturnType::Default => Output {
            value_ty: quote!(()),
            fallible: false,
        },
        ReturnType::Type(_, ty) => match result_ok_type(ty) {
            Some(ok) => Output {
                value_ty: quote!(#ok),
                fallible: true,
            },
            None => Output {
                value_ty: quote!(#ty),
                fallible: false,
            },
        },
    }
}

/// `T` when `ty` is spelled `Result<T, ..>` (any path ending in `Result`).
fn result_ok_type(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    }
}

/// The body of an export: decode the parameters, run `invoke` (an
/// expression over the parameters' names, bound to `__wray_out`), then
/// `finish` (which yields the closure's `Result`).
pub(crate) fn call_body(
    invoke: TokenStream2,
    params: &[Param],
    finish: TokenStream2,
) -> TokenStream2 {
    let decode = params.iter().map(|p| {
        let (name, ty) = (&p.name, &p.ty);
        let label = name.to_string();
        quote_spanned!(ty.span()=> let #name: #ty = __wray_args.next::<#ty>(#label)?;)
    });
    quote! {
        #(#decode)*
        __wray_args.finish()?;
        let __wray_out = #invoke;
        #finish
    }
}

/// Turns `__wray_out` into the call's result: its `Err` (for a function
/// returning `Result`) becomes the call's error, named `function`.
pub(crate) fn finish_value(out: &Output, function: &str) -> TokenStream2 {
    if out.fallible {
        quote! {
            __wray_out.map_err(|e| ::wray::__private::application_error(#function, &e))
        }
    } else {
        quote!(::core::result::Result::Ok(__wray_out))
    }
}

/// The manifest's name for a parameter or return type (`docs/abi.md`,
/// "Manifest"): what a caller in another language must pass.
pub(crate) fn schema(ty: &Type) -> &'static str {
    match ty {
        Type::Reference(r) => match &*r.elem {
            Type::Slice(s) if schema(&s.elem) == "int" && is_u8(&s.elem) => "bytes",
            Type::Slice(_) => "list",
            elem => schema(elem),
        },
        Type::Tuple(t) if t.elems.is_empty() => "null",
        Type::Tuple(_) | Type::Array(_) | Type::Slice(_) => "list",
        Type::Paren(p) => schema(&p.elem),
        Type::Group(g) => schema(&g.elem),
        Type::Path(p) => {
            let Some(last) = p.path.segments.last() else {
                return "any";
            };
            let inner = || match &last.arguments {
                syn::PathArguments::AngleBracketed(a) => a.args.iter().find_map(|g| match g {
                    syn::GenericArgument::Type(t) => Some(t),
                    _ => None,
                }),
                _ => None,
            };
            match last.ident.to_string().as_str() {
                "i8" | "i16" | "i32" | "i64" | "i128" | "isize" | "u8" | "u16" | "u32" | "u64"
                | "u128" | "usize" => "int",
                "f32" | "f64" => "float",
                "bool" => "bool",
                "String" | "str" | "char" => "str",
                "Vec" | "Box" if inner().is_some_and(is_u8) => "bytes",
                "Vec" | "VecDeque" | "HashSet" | "BTreeSet" => "list",
                "HashMap" | "BTreeMap" => "map",
                "ObjectRef" => "ref",
                "Option" | "View" | "Box" | "Cbor" => inner().map_or("any", schema),
                "Value" => "any",
                _ => "any",
            }
        }
        _ => "any",
    }
}

/// Whether `ty` is spelled `Cbor<..>`: a cross-language value.
fn is_cbor(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Cbor"))
}

fn is_u8(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.path.is_ident("u8"))
}

/// A manifest record of a task, actor constructor or method, in the
/// module's `wray:manifest` custom section (one static per record: the
/// linker concatenates them into one CBOR sequence).
pub(crate) fn manifest_record(
    kind: &str,
    class: Option<&str>,
    name: &str,
    params: &[Param],
    returns: &TokenStream2,
    pure: bool,
) -> TokenStream2 {
    use wray_abi::value::Value;
    let s = |v: &str| Value::Str(v.to_string());
    let returns = syn::parse2::<Type>(returns.clone()).ok();
    // A function that takes or returns a `Cbor` value speaks CBOR.
    let cbor = returns.as_ref().is_some_and(is_cbor) || params.iter().any(|p| is_cbor(&p.ty));
    let encoding = if cbor { "cbor" } else { "rkyv" };
    let returns = returns.as_ref().map_or("any", schema);
    let params = params
        .iter()
        .map(|p| Value::List(vec![s(&p.name.to_string()), s(schema(&p.ty))]))
        .collect();
    let mut entries = vec![
        (s("kind"), s(kind)),
        (s("name"), s(name)),
        (s("params"), Value::List(params)),
        (s("returns"), s(returns)),
        (s("encoding"), s(encoding)),
    ];
    if let Some(c) = class {
        entries.push((s("class"), s(c)));
    }
    if pure {
        entries.push((s("pure"), Value::Bool(true)));
    }
    let bytes = Value::map(entries)
        .encode()
        .expect("a manifest record encodes");
    let len = bytes.len();
    let section = wray_abi::export::MANIFEST_SECTION;
    quote! {
        const _: () = {
            #[cfg(target_arch = "wasm32")]
            #[unsafe(link_section = #section)]
            #[used]
            static __WRAY_MANIFEST: [u8; #len] = [#(#bytes),*];
        };
    }
}

fn remote_fn(f: ItemFn, parsed: options::Parsed) -> syn::Result<TokenStream2> {
    let defaults = parsed.sets;
    let sig = &f.sig;
    if let Some(FnArg::Receiver(r)) = sig.inputs.first() {
        return Err(syn::Error::new_spanned(
            r,
            "a method is remote through its actor: put #[wray::remote] on the impl block",
        ));
    }
    let params = check_signature(sig, "a remote function")?;
    let out = output(sig);
    let name = &sig.ident;
    let vis = &f.vis;
    let name_str = name.to_string();
    let export = format!("{}{name_str}", wray_abi::export::TASK_PREFIX);
    let call_ty = format_ident!("__WrayCall_{}", name);
    let value_ty = &out.value_ty;
    let pnames: Vec<_> = params.iter().map(|p| &p.name).collect();
    let ptys: Vec<_> = params.iter().map(|p| &p.ty).collect();
    let names = params.iter().map(|p| &p.name);
    let body = call_body(
        quote!(#name(#(#names),*)),
        &params,
        finish_value(&out, &name_str),
    );
    let manifest = manifest_record("task", None, &name_str, &params, &out.value_ty, parsed.pure);
    let doc_mod = format!(
        "Remote calls of [`{name_str}()`](fn@{name_str}): `{name_str}::remote(..)` submits it as a task."
    );
    let doc_remote =
        format!("Submits `{name_str}` as a task and returns a reference to its result at once.");
    Ok(quote! {
        #f

        #[doc = #doc_mod]
        #[allow(non_snake_case)]
        #vis mod #name {
            #[allow(unused_imports)]
            use super::*;

            #[doc = #doc_remote]
            pub fn remote(#(#pnames: impl ::wray::IntoArg<#ptys>),*) -> ::wray::ObjectRef<#value_ty> {
                self::options().remote(#(#pnames),*)
            }

            /// Options for one call (starting from the function's defaults):
            /// chain setters, then `.remote(..)`.
            pub fn options() -> super::#call_ty {
                #[allow(unused_mut)]
                let mut __wray_o = ::wray::__private::Options::default();
                #defaults
                super::#call_ty { options: __wray_o }
            }
        }

        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #[must_use = "a call does nothing until `.remote(..)`"]
        #vis struct #call_ty {
            options: ::wray::__private::Options,
        }

        impl ::wray::RemoteOptions for #call_ty {
            fn options_mut(&mut self) -> &mut ::wray::__private::Options {
                &mut self.options
            }
        }

        impl #call_ty {
            #[doc = #doc_remote]
            pub fn remote(self, #(#pnames: impl ::wray::IntoArg<#ptys>),*) -> ::wray::ObjectRef<#value_ty> {
                ::wray::__private::submit(
                    ::wray::__private::SpecKind::Task,
                    #name_str,
                    ::core::option::Option::None,
                    &self.options,
                    ::std::vec![#(::wray::IntoArg::<#ptys>::into_arg(#pnames)),*],
                )
            }
        }

        #manifest

        const _: () = {
            #[unsafe(export_name = #export)]
            extern "C" fn __wray_task_export() -> i32 {
                ::wray::__private::run_call(|__wray_args| { #body })
            }
        };
    })
}

fn driver(f: ItemFn) -> syn::Result<TokenStream2> {
    let sig = &f.sig;
    if let Some(input) = sig.inputs.first() {
        return Err(syn::Error::new_spanned(
            input,
            "#[wray::main] takes no parameters: read the driver's arguments with std::env::args()",
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &sig.generics,
            "#[wray::main] cannot be generic",
        ));
    }
    if let Some(a) = &sig.asyncness {
        return Err(syn::Error::new_spanned(a, "#[wray::main] cannot be async"));
    }
    let name = &sig.ident;
    let export = wray_abi::export::MAIN;
    let span = Span::call_site();
    Ok(quote_spanned! {span=>
        #f

        const _: () = {
            #[unsafe(export_name = #export)]
            extern "C" fn __wray_main_export() -> i32 {
                ::wray::__private::run_main(#name)
            }
        };
    })
}
