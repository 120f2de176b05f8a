//! `Grant` for plain data and for containers of grants.

use std::marker::PhantomData;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::num::{
    NonZeroI8, NonZeroI16, NonZeroI32, NonZeroI64, NonZeroU8, NonZeroU16, NonZeroU32, NonZeroU64,
    NonZeroUsize,
};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use super::{Grant, Inventory, ReissueError, Segment};
use crate::revoke::Revoker;

/// Plain data carries no authority: re-issued by `Clone`, nothing to revoke,
/// nothing to report.
macro_rules! plain_data {
    ($($ty:ty),* $(,)?) => {$(
        impl Grant for $ty {
            fn reissue(&self) -> Result<Self, ReissueError> {
                Ok(self.clone())
            }
            fn attach_revoker(&mut self, _: &Revoker) {}
            fn visit<'g>(&'g self, _: &mut Inventory<'g>) {}
        }
    )*};
}

plain_data!(
    (),
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    NonZeroU8,
    NonZeroU16,
    NonZeroU32,
    NonZeroU64,
    NonZeroUsize,
    NonZeroI8,
    NonZeroI16,
    NonZeroI32,
    NonZeroI64,
    String,
    Box<str>,
    &'static str,
    PathBuf,
    Duration,
    Instant,
    SystemTime,
    IpAddr,
    Ipv4Addr,
    Ipv6Addr,
    SocketAddr,
    SocketAddrV4,
    SocketAddrV6,
);

impl<T: Send + 'static> Grant for PhantomData<T> {
    fn reissue(&self) -> Result<Self, ReissueError> {
        Ok(PhantomData)
    }
    fn attach_revoker(&mut self, _: &Revoker) {}
    fn visit<'g>(&'g self, _: &mut Inventory<'g>) {}
}

impl<T: Grant> Grant for Option<T> {
    fn reissue(&self) -> Result<Self, ReissueError> {
        self.as_ref().map(Grant::reissue).transpose()
    }
    fn attach_revoker(&mut self, revoker: &Revoker) {
        if let Some(inner) = self {
            inner.attach_revoker(revoker);
        }
    }
    fn visit<'g>(&'g self, inventory: &mut Inventory<'g>) {
        if let Some(inner) = self {
            inner.visit(inventory);
        }
    }
}

impl<T: Grant> Grant for Box<T> {
    fn reissue(&self) -> Result<Self, ReissueError> {
        T::reissue(self).map(Box::new)
    }
    fn attach_revoker(&mut self, revoker: &Revoker) {
        T::attach_revoker(self, revoker);
    }
    fn visit<'g>(&'g self, inventory: &mut Inventory<'g>) {
        T::visit(self, inventory);
    }
}

fn reissue_each<T: Grant>(items: &[T]) -> Result<Vec<T>, ReissueError> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| item.reissue().map_err(|e| e.within(Segment::Index(i))))
        .collect()
}

fn visit_each<'g, T: Grant>(items: &'g [T], inventory: &mut Inventory<'g>) {
    for (i, item) in items.iter().enumerate() {
        inventory.enter(Segment::Index(i));
        item.visit(inventory);
        inventory.leave();
    }
}

impl<T: Grant> Grant for Vec<T> {
    fn reissue(&self) -> Result<Self, ReissueError> {
        reissue_each(self)
    }
    fn attach_revoker(&mut self, revoker: &Revoker) {
        self.iter_mut()
            .for_each(|item| item.attach_revoker(revoker));
    }
    fn visit<'g>(&'g self, inventory: &mut Inventory<'g>) {
        visit_each(self, inventory);
    }
}

/// Maps of grants: keys are plain data (cloned), values grants (re-issued).
/// Inventories name a value by its position in the map's order: sorted for
/// a `BTreeMap`, unspecified for a `HashMap`.
macro_rules! map_of_grants {
    ($map:ident, $($key_bound:tt)+) => {
        impl<K, V> Grant for std::collections::$map<K, V>
        where
            K: $($key_bound)+ + Clone + Send + 'static,
            V: Grant,
        {
            fn reissue(&self) -> Result<Self, ReissueError> {
                self.iter()
                    .enumerate()
                    .map(|(i, (key, value))| {
                        value
                            .reissue()
                            .map(|value| (key.clone(), value))
                            .map_err(|e| e.within(Segment::Index(i)))
                    })
                    .collect()
            }
            fn attach_revoker(&mut self, revoker: &Revoker) {
                self.values_mut()
                    .for_each(|value| value.attach_revoker(revoker));
            }
            fn visit<'g>(&'g self, inventory: &mut Inventory<'g>) {
                for (i, value) in self.values().enumerate() {
                    inventory.enter(Segment::Index(i));
                    value.visit(inventory);
                    inventory.leave();
                }
            }
        }
    };
}

map_of_grants!(BTreeMap, Ord);
map_of_grants!(HashMap, Eq + std::hash::Hash);

impl<T: Grant, const N: usize> Grant for [T; N] {
    fn reissue(&self) -> Result<Self, ReissueError> {
        match <[T; N]>::try_from(reissue_each(self)?) {
            Ok(array) => Ok(array),
            // `reissue_each` returns exactly one element per input element.
            Err(_) => unreachable!("re-issuing an array of {N} produced another length"),
        }
    }
    fn attach_revoker(&mut self, revoker: &Revoker) {
        self.iter_mut()
            .for_each(|item| item.attach_revoker(revoker));
    }
    fn visit<'g>(&'g self, inventory: &mut Inventory<'g>) {
        visit_each(self, inventory);
    }
}

macro_rules! tuple_grant {
    ($(($($name:ident $index:tt),+))+) => {$(
        impl<$($name: Grant),+> Grant for ($($name,)+) {
            fn reissue(&self) -> Result<Self, ReissueError> {
                Ok(($(
                    self.$index.reissue().map_err(|e| e.within(Segment::Position($index)))?,
                )+))
            }
            fn attach_revoker(&mut self, revoker: &Revoker) {
                $(self.$index.attach_revoker(revoker);)+
            }
            fn visit<'g>(&'g self, inventory: &mut Inventory<'g>) {
                $(
                    inventory.enter(Segment::Position($index));
                    self.$index.visit(inventory);
                    inventory.leave();
                )+
            }
        }
    )+};
}

tuple_grant! {
    (A 0)
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
    (A 0, B 1, C 2, D 3, E 4)
    (A 0, B 1, C 2, D 3, E 4, F 5)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11)
}
