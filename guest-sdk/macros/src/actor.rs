//! `#[wray::remote]` on a struct and its impl block: actors.
//!
//! On the struct: `impl wray::Actor`, the `<Type>Methods` type an
//! `ActorHandle<Type>` dereferences to, and the cell holding the actor's
//! state in its instance. On the impl block: `Type::remote(..)` and
//! `Type::options()` from the constructor `new`, one method on
//! `<Type>Methods` per method taking `&self` or `&mut self`, and the exports
//! `wray:actor/<Type>/new` and `wray:actor/<Type>/<method>`. The struct and
//! its impl block must be in the same module.

use crate::{Output, Param, call_body, check_signature, output};
use proc_macro2::TokenStream as TokenStream2;
use quote::{format_ident, quote};
use syn::{FnArg, Ident, ImplItem, ImplItemFn, ItemImpl, ItemStruct, Type};
use wray_abi::export::{ACTOR_CONSTRUCTOR, ACTOR_PREFIX};

fn methods_ident(ty: &Ident) -> Ident {
    format_ident!("{}Methods", ty)
}

fn state_ident(ty: &Ident) -> Ident {
    format_ident!("__WRAY_STATE_{}", ty)
}

pub(crate) fn remote_struct(s: ItemStruct, defaults: TokenStream2) -> syn::Result<TokenStream2> {
    if !s.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &s.generics,
            "an actor cannot be generic: each actor type is one set of wasm exports",
        ));
    }
    let ty = &s.ident;
    let vis = &s.vis;
    let ty_str = ty.to_string();
    let methods = methods_ident(ty);
    let state = state_ident(ty);
    let doc = format!(
        "The remote methods of a [`{ty_str}`] actor: what an `ActorHandle<{ty_str}>` dereferences to."
    );
    Ok(quote! {
        #s

        #[doc = #doc]
        #[derive(Clone, Copy, Debug)]
        #vis struct #methods {
            actor: ::wray::ActorRef,
        }

        impl ::core::convert::From<::wray::ActorRef> for #methods {
            fn from(actor: ::wray::ActorRef) -> Self {
                #methods { actor }
            }
        }

        impl ::wray::Actor for #ty {
            const TYPE: &'static str = #ty_str;
            type Methods = #methods;

            fn default_options() -> ::wray::__private::Options {
                #[allow(unused_mut)]
                let mut __wray_o = ::wray::__private::Options::default();
                #defaults
                __wray_o
            }
        }

        ::std::thread_local! {
            #[allow(non_upper_case_globals)]
            static #state: ::core::cell::RefCell<::core::option::Option<#ty>> =
                const { ::core::cell::RefCell::new(::core::option::Option::None) };
        }
    })
}

/// How a method takes its actor.
enum Receiver {
    /// `&self` or `&mut self`: a remote method.
    Ref,
    /// No receiver: an associated function (the constructor, or a helper).
    None,
}

fn receiver(f: &ImplItemFn) -> syn::Result<Receiver> {
    match f.sig.inputs.first() {
        Some(FnArg::Receiver(r)) if r.reference.is_some() && r.colon_token.is_none() => {
            Ok(Receiver::Ref)
        }
        Some(FnArg::Receiver(r)) => Err(syn::Error::new_spanned(
            r,
            "an actor method takes `&self` or `&mut self`: the actor lives on after the call",
        )),
        _ => Ok(Receiver::None),
    }
}

pub(crate) fn remote_impl(i: ItemImpl) -> syn::Result<TokenStream2> {
    if let Some((_, path, _)) = &i.trait_ {
        return Err(syn::Error::new_spanned(
            path,
            "#[wray::remote] goes on the actor's inherent impl block, not on a trait impl",
        ));
    }
    if !i.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &i.generics,
            "an actor cannot be generic",
        ));
    }
    let ty = match &*i.self_ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last().map(|s| s.ident.clone()),
        _ => None,
    }
    .ok_or_else(|| {
        syn::Error::new_spanned(&i.self_ty, "an actor is a struct named by a plain path")
    })?;
    let ty_str = ty.to_string();
    let methods_ty = methods_ident(&ty);
    let state = state_ident(&ty);

    let mut constructor = None;
    let mut handle_methods = Vec::new();
    let mut exports = Vec::new();
    for item in &i.items {
        let ImplItem::Fn(f) = item else { continue };
        match receiver(f)? {
            Receiver::None if f.sig.ident == ACTOR_CONSTRUCTOR => constructor = Some(f),
            Receiver::None => {}
            Receiver::Ref => {
                let params = check_signature(&f.sig, "an actor method")?;
                let out = output(&f.sig);
                let (wrapper, export) = method(&ty_str, &state, f, &params, &out);
                handle_methods.push(wrapper);
                exports.push(export);
            }
        }
    }
    let Some(new) = constructor else {
        return Err(syn::Error::new_spanned(
            &i.self_ty,
            format!("an actor needs a constructor: `fn new(..) -> {ty_str}` in this impl block"),
        ));
    };
    let (create, new_export) = constructor_items(&ty, &state, new)?;
    let doc_methods = format!("Remote methods of [`{ty_str}`].");
    Ok(quote! {
        // `fn new() -> Self` is the constructor every actor has; a `Default`
        // beside it would only be a second way to build a local value.
        #[allow(clippy::new_without_default)]
        #i

        #create

        #[doc = #doc_methods]
        impl #methods_ty {
            #(#handle_methods)*
        }

        const _: () = {
            #new_export
            #(#exports)*
        };
    })
}

/// `Type::remote`, `Type::options` and the constructor export.
fn constructor_items(
    ty: &Ident,
    state: &Ident,
    new: &ImplItemFn,
) -> syn::Result<(TokenStream2, TokenStream2)> {
    let params = check_signature(&new.sig, "an actor constructor")?;
    let out = output(&new.sig);
    let ty_str = ty.to_string();
    let vis = &new.vis;
    let call_ty = format_ident!("__WrayNew_{}", ty);
    let names: Vec<_> = params.iter().map(|p| &p.name).collect();
    let tys: Vec<_> = params.iter().map(|p| &p.ty).collect();
    let export = format!("{ACTOR_PREFIX}{ty_str}/{ACTOR_CONSTRUCTOR}");
    let label = format!("{ty_str}.new");
    let store = if out.fallible {
        quote! {
            let __wray_actor = __wray_out.map_err(|e| ::wray::__private::application_error(#label, &e))?;
            ::wray::__private::set_state(&#state, __wray_actor);
            ::core::result::Result::Ok(())
        }
    } else {
        quote! {
            ::wray::__private::set_state(&#state, __wray_out);
            ::core::result::Result::Ok(())
        }
    };
    let body = call_body(quote!(#ty::new(#(#names),*)), &params, store);
    let doc_remote = format!("Creates a `{ty_str}` actor and returns its handle at once.");
    let create = quote! {
        impl #ty {
            #[doc = #doc_remote]
            #vis fn remote(#(#names: impl ::wray::IntoArg<#tys>),*) -> ::wray::ActorHandle<#ty> {
                Self::options().remote(#(#names),*)
            }

            /// Options for a new actor (starting from the type's defaults):
            /// chain setters, then `.remote(..)`.
            #vis fn options() -> #call_ty {
                #call_ty { options: <#ty as ::wray::Actor>::default_options() }
            }
        }

        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #[must_use = "an actor is created by `.remote(..)`"]
        #vis struct #call_ty {
            options: ::wray::__private::Options,
        }

        impl ::wray::RemoteOptions for #call_ty {
            fn options_mut(&mut self) -> &mut ::wray::__private::Options {
                &mut self.options
            }
        }

        impl ::wray::ActorOptions for #call_ty {}

        impl #call_ty {
            #[doc = #doc_remote]
            #vis fn remote(self, #(#names: impl ::wray::IntoArg<#tys>),*) -> ::wray::ActorHandle<#ty> {
                ::wray::__private::create_actor::<#ty>(
                    &self.options,
                    ::std::vec![#(::wray::IntoArg::<#tys>::into_arg(#names)),*],
                )
            }
        }
    };
    let manifest = crate::manifest_record(
        "actor",
        Some(&ty_str),
        ACTOR_CONSTRUCTOR,
        &params,
        &quote!(()),
        false,
    );
    let export_fn = quote! {
        #[unsafe(export_name = #export)]
        extern "C" fn __wray_actor_new() -> i32 {
            ::wray::__private::run_call(|__wray_args| { #body })
        }
        #manifest
    };
    Ok((create, export_fn))
}

/// A method's wrapper on the methods type, and its export.
fn method(
    ty: &str,
    state: &Ident,
    f: &ImplItemFn,
    params: &[Param],
    out: &Output,
) -> (TokenStream2, TokenStream2) {
    let name = &f.sig.ident;
    let vis = &f.vis;
    let names: Vec<_> = params.iter().map(|p| &p.name).collect();
    let tys: Vec<_> = params.iter().map(|p| &p.ty).collect();
    let value_ty = &out.value_ty;
    let method_str = name.to_string();
    let label = format!("{ty}.{method_str}");
    let export = format!("{ACTOR_PREFIX}{ty}/{method_str}");
    let export_fn = format_ident!("__wray_actor_{}", name);
    let doc = format!("Calls `{label}` on the actor; returns a reference to its result at once.");
    let wrapper = quote! {
        #[doc = #doc]
        #vis fn #name(&self, #(#names: impl ::wray::IntoArg<#tys>),*) -> ::wray::ObjectRef<#value_ty> {
            self.actor.call(#method_str, ::std::vec![#(::wray::IntoArg::<#tys>::into_arg(#names)),*])
        }
    };
    let finish = crate::finish_value(out, &label);
    let invoke = quote!(::wray::__private::with_state(&#state, |__wray_self| __wray_self.#name(#(#names),*))?);
    let body = call_body(invoke, params, finish);
    let manifest = crate::manifest_record("method", Some(ty), &method_str, params, value_ty, false);
    let export = quote! {
        #[unsafe(export_name = #export)]
        extern "C" fn #export_fn() -> i32 {
            ::wray::__private::run_call(|__wray_args| { #body })
        }
        #manifest
    };
    (wrapper, export)
}
