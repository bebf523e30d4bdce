//! `#[wray::remote]` on a struct and its impl block: actors.

use proc_macro2::TokenStream as TokenStream2;
use syn::{ItemImpl, ItemStruct};

pub(crate) fn remote_struct(s: ItemStruct) -> syn::Result<TokenStream2> {
    Err(syn::Error::new_spanned(s, "actors are not supported yet"))
}

pub(crate) fn remote_impl(i: ItemImpl) -> syn::Result<TokenStream2> {
    Err(syn::Error::new_spanned(i, "actors are not supported yet"))
}
