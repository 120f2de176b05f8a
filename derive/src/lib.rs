//! `#[derive(Grant)]` for the `compartment` crate; use it through
//! `compartment::Grant`, not directly.
//!
//! The derived implementation re-issues, revokes and visits every field in
//! declaration order, naming each field in inventories and errors. A field
//! marked `#[grant(data)]` is plain data: re-issued by `Clone`, untouched by
//! revocation, and reported as `Capability::Data` so audits see the opt-out.

#![forbid(unsafe_code)]

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, Ident, parse_macro_input};

/// Derives `compartment::Grant`. See the `compartment` crate.
#[proc_macro_derive(Grant, attributes(grant))]
pub fn derive_grant(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// One field of the struct or of an enum variant.
struct Field {
    /// The binding used in patterns (`__f0`, ...).
    binding: Ident,
    /// How the field is named in the type: `name` or `0`.
    member: syn::Member,
    ty: syn::Type,
    data: bool,
}

fn expand(mut input: DeriveInput) -> syn::Result<TokenStream> {
    let name = input.ident.clone();
    let mut data_types = Vec::new();

    let (reissue, attach, visit) = match &input.data {
        Data::Struct(data) => {
            let fields = collect(&data.fields)?;
            data_types.extend(fields.iter().filter(|f| f.data).map(|f| f.ty.clone()));
            let pattern = pattern(quote!(Self), &data.fields, &fields);
            let (r, a, v) = bodies(quote!(Self), &data.fields, &fields, None);
            (
                quote!(let #pattern = self; #r),
                quote!(let #pattern = self; #a),
                quote!(let #pattern = self; #v),
            )
        }
        Data::Enum(data) => {
            let mut reissue_arms = Vec::new();
            let mut attach_arms = Vec::new();
            let mut visit_arms = Vec::new();
            for variant in &data.variants {
                let ident = &variant.ident;
                let path = quote!(Self::#ident);
                let fields = collect(&variant.fields)?;
                data_types.extend(fields.iter().filter(|f| f.data).map(|f| f.ty.clone()));
                let pattern = pattern(path.clone(), &variant.fields, &fields);
                let (r, a, v) = bodies(path, &variant.fields, &fields, Some(ident));
                reissue_arms.push(quote!(#pattern => { #r }));
                attach_arms.push(quote!(#pattern => { #a }));
                visit_arms.push(quote!(#pattern => { #v }));
            }
            (
                quote!(match self { #(#reissue_arms)* }),
                quote!(match self { #(#attach_arms)* }),
                quote!(match self { #(#visit_arms)* }),
            )
        }
        Data::Union(data) => {
            return Err(syn::Error::new(
                data.union_token.span(),
                "Grant cannot be derived for a union: its fields cannot be re-issued safely",
            ));
        }
    };

    bound(
        &mut input.generics,
        quote!(::compartment::Grant),
        data_types,
        quote!(::core::clone::Clone + ::core::marker::Send + 'static),
    );
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();

    Ok(quote! {
        #[automatically_derived]
        impl #impl_generics ::compartment::Grant for #name #ty_generics #where_clause {
            fn reissue(&self) -> ::core::result::Result<Self, ::compartment::ReissueError> {
                #reissue
            }

            fn attach_revoker(&mut self, revoker: &::compartment::Revoker) {
                let _ = &revoker;
                #attach
            }

            fn visit<'__grant>(&'__grant self, inventory: &mut ::compartment::Inventory<'__grant>) {
                let _ = &inventory;
                #visit
            }
        }
    })
}

/// Bounds every type parameter by `trait_bound` and every
/// `#[grant(data)]` field's type by `data_bound`.
fn bound(
    generics: &mut syn::Generics,
    trait_bound: TokenStream,
    data_types: Vec<syn::Type>,
    data_bound: TokenStream,
) {
    let type_params: Vec<Ident> = generics.type_params().map(|p| p.ident.clone()).collect();
    let where_clause = generics.make_where_clause();
    for param in type_params {
        where_clause
            .predicates
            .push(syn::parse_quote!(#param: #trait_bound));
    }
    for ty in data_types {
        where_clause
            .predicates
            .push(syn::parse_quote!(#ty: #data_bound));
    }
}

fn collect(fields: &Fields) -> syn::Result<Vec<Field>> {
    fields
        .iter()
        .enumerate()
        .map(|(i, field)| {
            let mut data = false;
            for attr in &field.attrs {
                if !attr.path().is_ident("grant") {
                    continue;
                }
                attr.parse_nested_meta(|meta| {
                    if meta.path.is_ident("data") {
                        data = true;
                        Ok(())
                    } else {
                        Err(meta.error("unknown grant attribute; the only one is `#[grant(data)]`"))
                    }
                })?;
            }
            let member = match &field.ident {
                Some(ident) => syn::Member::Named(ident.clone()),
                None => syn::Member::Unnamed(syn::Index::from(i)),
            };
            Ok(Field {
                binding: format_ident!("__field{}", i),
                member,
                ty: field.ty.clone(),
                data,
            })
        })
        .collect()
}

/// `Path { a: __field0, .. }`, `Path(__field0, ..)` or `Path`.
fn pattern(path: TokenStream, shape: &Fields, fields: &[Field]) -> TokenStream {
    let members = fields.iter().map(|f| &f.member);
    let bindings: Vec<&Ident> = fields.iter().map(|f| &f.binding).collect();
    match shape {
        Fields::Named(_) => quote!(#path { #(#members: #bindings),* }),
        Fields::Unnamed(_) => quote!(#path ( #(#bindings),* )),
        Fields::Unit => quote!(#path),
    }
}

fn segment(field: &Field) -> TokenStream {
    match &field.member {
        syn::Member::Named(ident) => {
            let name = ident.to_string();
            let name = name.strip_prefix("r#").unwrap_or(&name).to_owned();
            quote!(::compartment::Segment::Field(#name))
        }
        syn::Member::Unnamed(index) => {
            let index = index.index as usize;
            quote!(::compartment::Segment::Position(#index))
        }
    }
}

fn bodies(
    path: TokenStream,
    shape: &Fields,
    fields: &[Field],
    variant: Option<&Ident>,
) -> (TokenStream, TokenStream, TokenStream) {
    let variant_segment = variant.map(|ident| {
        let name = ident.to_string();
        quote!(::compartment::Segment::Variant(#name))
    });

    let values: Vec<TokenStream> = fields
        .iter()
        .map(|field| {
            let binding = &field.binding;
            let span = field.ty.span();
            if field.data {
                quote_spanned!(span=> ::core::clone::Clone::clone(#binding))
            } else {
                let mut within = vec![segment(field)];
                if let Some(v) = &variant_segment {
                    within.push(v.clone());
                }
                quote_spanned!(span=>
                    ::compartment::Grant::reissue(#binding)
                        #(.map_err(|e| e.within(#within)))*?
                )
            }
        })
        .collect();
    let members = fields.iter().map(|f| &f.member);
    let rebuilt = match shape {
        Fields::Named(_) => quote!(#path { #(#members: #values),* }),
        Fields::Unnamed(_) => quote!(#path ( #(#values),* )),
        Fields::Unit => quote!(#path),
    };
    let reissue = quote!(::core::result::Result::Ok(#rebuilt));

    let attach = fields.iter().filter(|f| !f.data).map(|field| {
        let binding = &field.binding;
        let span = field.ty.span();
        quote_spanned!(span=> ::compartment::Grant::attach_revoker(#binding, revoker);)
    });
    let attach = quote!(#(#attach)*);

    let visits = fields.iter().map(|field| {
        let binding = &field.binding;
        let ty = &field.ty;
        let seg = segment(field);
        let body = if field.data {
            quote!(inventory.hold(::compartment::caps::Capability::Data {
                type_name: ::core::any::type_name::<#ty>(),
            });)
        } else {
            let span = field.ty.span();
            quote_spanned!(span=> ::compartment::Grant::visit(#binding, inventory);)
        };
        quote!(inventory.enter(#seg); #body inventory.leave();)
    });
    let visit = match &variant_segment {
        Some(v) if !fields.is_empty() => {
            quote!(inventory.enter(#v); #(#visits)* inventory.leave();)
        }
        _ => quote!(#(#visits)*),
    };
    let _ = Span::call_site();
    (reissue, attach, visit)
}

/// Derives `compartment::process::Portable`: every field crosses into a
/// process child in declaration order, `#[grant(data)]` fields with serde.
#[proc_macro_derive(Portable, attributes(grant))]
pub fn derive_portable(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand_portable(input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

fn expand_portable(mut input: DeriveInput) -> syn::Result<TokenStream> {
    let name = input.ident.clone();
    let mut data_types = Vec::new();
    let (pack, unpack) = match &input.data {
        Data::Struct(data) => {
            let fields = collect(&data.fields)?;
            data_types.extend(fields.iter().filter(|f| f.data).map(|f| f.ty.clone()));
            let pattern = pattern(quote!(Self), &data.fields, &fields);
            let packs = fields.iter().map(pack_field);
            let rebuilt = rebuild(quote!(Self), &data.fields, &fields);
            (
                quote!(let #pattern = self; #(#packs)* ::core::result::Result::Ok(())),
                quote!(::core::result::Result::Ok(#rebuilt)),
            )
        }
        Data::Enum(data) => {
            let mut pack_arms = Vec::new();
            let mut unpack_arms = Vec::new();
            for (index, variant) in data.variants.iter().enumerate() {
                let index = index as u32;
                let ident = &variant.ident;
                let fields = collect(&variant.fields)?;
                data_types.extend(fields.iter().filter(|f| f.data).map(|f| f.ty.clone()));
                let pattern = pattern(quote!(Self::#ident), &variant.fields, &fields);
                let packs = fields.iter().map(pack_field);
                pack_arms.push(quote!(#pattern => {
                    packing.data(&#index)?;
                    #(#packs)*
                }));
                let rebuilt = rebuild(quote!(Self::#ident), &variant.fields, &fields);
                unpack_arms.push(quote!(#index => ::core::result::Result::Ok(#rebuilt),));
            }
            (
                quote!(match self { #(#pack_arms)* } ::core::result::Result::Ok(())),
                quote!(match unpacking.data::<u32>()? {
                    #(#unpack_arms)*
                    other => ::core::result::Result::Err(::compartment::process::PackError::Malformed(
                        ::std::format!("no variant {} in {}", other, ::core::stringify!(#name)),
                    )),
                }),
            )
        }
        Data::Union(data) => {
            return Err(syn::Error::new(
                data.union_token.span(),
                "Portable cannot be derived for a union",
            ));
        }
    };
    bound(
        &mut input.generics,
        quote!(::compartment::process::Portable),
        data_types,
        quote!(
            ::compartment::process::__serde::Serialize
                + ::compartment::process::__serde::de::DeserializeOwned
        ),
    );
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    Ok(quote! {
        #[automatically_derived]
        impl #impl_generics ::compartment::process::Portable for #name #ty_generics #where_clause {
            fn pack(
                &self,
                packing: &mut ::compartment::process::Packing,
            ) -> ::core::result::Result<(), ::compartment::process::PackError> {
                let _ = &packing;
                #pack
            }

            fn unpack(
                unpacking: &mut ::compartment::process::Unpacking,
            ) -> ::core::result::Result<Self, ::compartment::process::PackError> {
                let _ = &unpacking;
                #unpack
            }
        }
    })
}

fn pack_field(field: &Field) -> TokenStream {
    let binding = &field.binding;
    let span = field.ty.span();
    if field.data {
        quote_spanned!(span=> packing.data(#binding)?;)
    } else {
        quote_spanned!(span=> ::compartment::process::Portable::pack(#binding, packing)?;)
    }
}

fn rebuild(path: TokenStream, shape: &Fields, fields: &[Field]) -> TokenStream {
    let values = fields.iter().map(|field| {
        let ty = &field.ty;
        let span = ty.span();
        if field.data {
            quote_spanned!(span=> unpacking.data::<#ty>()?)
        } else {
            quote_spanned!(span=> <#ty as ::compartment::process::Portable>::unpack(unpacking)?)
        }
    });
    let members = fields.iter().map(|f| &f.member);
    match shape {
        Fields::Named(_) => quote!(#path { #(#members: #values),* }),
        Fields::Unnamed(_) => quote!(#path ( #(#values),* )),
        Fields::Unit => quote!(#path),
    }
}
