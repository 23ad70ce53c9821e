//! Whether the readers of this module know every member k8s-openapi's types read: a reader
//! skips a member it does not know, so a member that a newer k8s-openapi (or another
//! Kubernetes version feature) adds would be lost. The names come from the types
//! themselves (the list each passes to `deserialize_struct`); with any name unknown, the
//! pod reader leaves every pod to serde_json.

use std::sync::OnceLock;

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, HostIP, PodCondition, PodIP, PodStatus, VolumeMountStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde::de::{self, Deserialize, Deserializer, Visitor};

use super::meta::OWNER_REFERENCE;
use super::status::{
    CONDITION, CONTAINER_LEFT, CONTAINER_READ, IP, MOUNT_LEFT, MOUNT_READ, RUNNING, STATE,
    STATUS_LEFT, STATUS_READ, TERMINATED, WAITING,
};

/// A deserializer that only notes the member names of the struct asked of it.
struct Names<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for Names<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("names taken"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// The member names `T` reads.
fn names<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    let mut names: &'static [&'static str] = &[];
    let _ = T::deserialize(Names(&mut names));
    names
}

/// Whether every member `T` reads is one of `known`.
fn covered<T: for<'de> Deserialize<'de>>(known: &[&[&str]]) -> bool {
    let names = names::<T>();
    !names.is_empty() && names.iter().all(|n| known.iter().any(|k| k.contains(n)))
}

/// Whether the readers know every member of the types they read (computed once).
pub(super) fn readers_know_every_member() -> bool {
    static KNOWN: OnceLock<bool> = OnceLock::new();
    *KNOWN.get_or_init(|| {
        let known = covered::<PodStatus>(&[STATUS_READ, STATUS_LEFT])
            && covered::<ContainerStatus>(&[CONTAINER_READ, CONTAINER_LEFT])
            && covered::<VolumeMountStatus>(&[MOUNT_READ, MOUNT_LEFT])
            && covered::<PodCondition>(&[CONDITION])
            && covered::<ContainerState>(&[STATE])
            && covered::<ContainerStateRunning>(&[RUNNING])
            && covered::<ContainerStateTerminated>(&[TERMINATED])
            && covered::<ContainerStateWaiting>(&[WAITING])
            && covered::<HostIP>(&[IP])
            && covered::<PodIP>(&[IP])
            && covered::<OwnerReference>(&[OWNER_REFERENCE]);
        if !known {
            tracing::debug!("k8s-openapi's pod types have members the lean reader does not know");
        }
        known
    })
}
