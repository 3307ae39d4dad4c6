//! Decoding a known type's fields straight into its struct, for events whose `type`
//! comes before their data (as vibes writes them): the rest of the JSON object is read
//! once, its keys routed as they come, the type's fields to the struct, the envelope's
//! to their slots, anything else to the event's extra fields. The general path (every
//! field into a map first, then the map into the struct) builds a JSON value for every
//! field and allocates about twice as much.

use jiff::Timestamp;
use serde::Deserializer;
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use crate::event::EventId;

/// The envelope fields still to be read, and the extra fields found.
pub(crate) struct Slots<'s> {
    pub(crate) id: &'s mut Option<EventId>,
    pub(crate) timestamp: &'s mut Option<Timestamp>,
    pub(crate) source: &'s mut Option<String>,
    pub(crate) extra: &'s mut Map<String, Value>,
}

/// A deserializer over the rest of an event object that presents only the fields of
/// one struct (`fields`) to it.
pub(crate) struct Rest<'s, A> {
    pub(crate) map: A,
    pub(crate) fields: &'static [&'static str],
    pub(crate) slots: Slots<'s>,
}

fn set<T, E: de::Error>(slot: &mut Option<T>, value: T, key: &str) -> Result<(), E> {
    match slot.replace(value) {
        Some(_) => Err(E::custom(format_args!("duplicate field `{key}`"))),
        None => Ok(()),
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Rest<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        loop {
            let Some(key) = self.map.next_key::<String>()? else {
                return Ok(None);
            };
            match key.as_str() {
                "id" => set(self.slots.id, self.map.next_value::<EventId>()?, "id")?,
                "timestamp" => set(
                    self.slots.timestamp,
                    self.map.next_value::<Timestamp>()?,
                    "timestamp",
                )?,
                "source" => set(self.slots.source, self.map.next_value()?, "source")?,
                "type" => return Err(de::Error::custom("duplicate field `type`")),
                k if self.fields.contains(&k) => {
                    return seed
                        .deserialize(IntoDeserializer::<A::Error>::into_deserializer(key))
                        .map(Some);
                }
                _ => {
                    let value = self.map.next_value::<Value>()?;
                    if self.slots.extra.contains_key(&key) {
                        return Err(de::Error::custom(format_args!("duplicate field `{key}`")));
                    }
                    self.slots.extra.insert(key, value);
                }
            }
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        self.map.next_value_seed(seed)
    }
}

impl<'de, A: MapAccess<'de>> Deserializer<'de> for Rest<'_, A> {
    type Error = A::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_map(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map struct
        enum identifier ignored_any
    }
}
