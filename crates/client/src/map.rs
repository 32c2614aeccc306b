//! The distributed map (IMap) API.

use crate::client::Client;
use crate::error::ClientError;
use crate::listener::{self, EntryEvent, ListenerSpec, Registration};
use crate::serialization::{FromData, ToData};
use bytes::Bytes;
use ferrocast_protocol::messages::client_side::MapResponse;
use ferrocast_protocol::MapOp;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;
use uuid::Uuid;

/// A value as the cluster holds it (Hazelcast serialized form).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Value(pub Bytes);

impl Value {
    /// Serializes `v` once: the value can then be written any number of
    /// times without serializing (and copying) it again, as a value read
    /// from the cluster can be written back as it is.
    pub fn of<T: ToData + ?Sized>(v: &T) -> Value {
        Value(v.to_data())
    }

    pub fn to<T: FromData>(&self) -> Result<T, ClientError> {
        T::from_data(&self.0)
    }
}

/// Sent as it is: a reference to the same bytes, no copy.
impl ToData for Value {
    fn to_data(&self) -> Bytes {
        self.0.clone()
    }
}

pub struct Map {
    client: Client,
    name: String,
}

fn unexpected(r: MapResponse) -> ClientError {
    ClientError::Serialization(format!("unexpected response {r:?}"))
}

fn ttl_ms(ttl: Option<Duration>) -> i64 {
    ttl.map(|d| d.as_millis().max(1) as i64).unwrap_or(-1)
}

impl Map {
    pub(crate) fn new(client: Client, name: &str) -> Self {
        Self {
            client,
            name: name.to_string(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    async fn op(&self, op: MapOp) -> Result<MapResponse, ClientError> {
        self.client.map_op(&self.name, op).await
    }

    async fn data(&self, op: MapOp) -> Result<Option<Value>, ClientError> {
        match self.op(op).await? {
            MapResponse::Data(d) => Ok(d.map(Value)),
            r => Err(unexpected(r)),
        }
    }

    async fn boolean(&self, op: MapOp) -> Result<bool, ClientError> {
        match self.op(op).await? {
            MapResponse::Bool(b) => Ok(b),
            r => Err(unexpected(r)),
        }
    }

    async fn list(&self, op: MapOp) -> Result<Vec<Value>, ClientError> {
        match self.op(op).await? {
            MapResponse::List(l) => Ok(l.into_iter().map(Value).collect()),
            r => Err(unexpected(r)),
        }
    }

    async fn entries(&self, op: MapOp) -> Result<Vec<(Value, Value)>, ClientError> {
        match self.op(op).await? {
            MapResponse::Entries(l) => {
                Ok(l.into_iter().map(|(k, v)| (Value(k), Value(v))).collect())
            }
            r => Err(unexpected(r)),
        }
    }

    /// Stores `value`; returns the previous one.
    pub async fn put(
        &self,
        key: impl ToData,
        value: impl ToData,
    ) -> Result<Option<Value>, ClientError> {
        self.put_with_ttl(key, value, None).await
    }

    /// Stores `value` to expire after `ttl` (`None`: never).
    pub async fn put_with_ttl(
        &self,
        key: impl ToData,
        value: impl ToData,
        ttl: Option<Duration>,
    ) -> Result<Option<Value>, ClientError> {
        self.data(MapOp::Put {
            key: key.to_data(),
            value: value.to_data(),
            ttl: ttl_ms(ttl),
        })
        .await
    }

    /// Stores `value` without returning the previous one.
    pub async fn set(&self, key: impl ToData, value: impl ToData) -> Result<(), ClientError> {
        self.op(MapOp::Set {
            key: key.to_data(),
            value: value.to_data(),
            ttl: -1,
        })
        .await
        .map(|_| ())
    }

    pub async fn get(&self, key: impl ToData) -> Result<Option<Value>, ClientError> {
        self.data(MapOp::Get { key: key.to_data() }).await
    }

    /// Reads and converts in one step.
    pub async fn get_as<T: FromData>(&self, key: impl ToData) -> Result<Option<T>, ClientError> {
        self.get(key).await?.map(|v| v.to()).transpose()
    }

    pub async fn remove(&self, key: impl ToData) -> Result<Option<Value>, ClientError> {
        self.data(MapOp::Remove { key: key.to_data() }).await
    }

    pub async fn delete(&self, key: impl ToData) -> Result<(), ClientError> {
        self.op(MapOp::Delete { key: key.to_data() })
            .await
            .map(|_| ())
    }

    pub async fn remove_if_same(
        &self,
        key: impl ToData,
        value: impl ToData,
    ) -> Result<bool, ClientError> {
        self.boolean(MapOp::RemoveIfSame {
            key: key.to_data(),
            value: value.to_data(),
        })
        .await
    }

    pub async fn put_if_absent(
        &self,
        key: impl ToData,
        value: impl ToData,
    ) -> Result<Option<Value>, ClientError> {
        self.data(MapOp::PutIfAbsent {
            key: key.to_data(),
            value: value.to_data(),
            ttl: -1,
        })
        .await
    }

    pub async fn replace(
        &self,
        key: impl ToData,
        value: impl ToData,
    ) -> Result<Option<Value>, ClientError> {
        self.data(MapOp::Replace {
            key: key.to_data(),
            value: value.to_data(),
        })
        .await
    }

    pub async fn replace_if_same(
        &self,
        key: impl ToData,
        expected: impl ToData,
        value: impl ToData,
    ) -> Result<bool, ClientError> {
        self.boolean(MapOp::ReplaceIfSame {
            key: key.to_data(),
            expected: expected.to_data(),
            value: value.to_data(),
        })
        .await
    }

    pub async fn contains_key(&self, key: impl ToData) -> Result<bool, ClientError> {
        self.boolean(MapOp::ContainsKey { key: key.to_data() })
            .await
    }

    pub async fn contains_value(&self, value: impl ToData) -> Result<bool, ClientError> {
        self.boolean(MapOp::ContainsValue {
            value: value.to_data(),
        })
        .await
    }

    pub async fn size(&self) -> Result<usize, ClientError> {
        match self.op(MapOp::Size).await? {
            MapResponse::Int(n) => Ok(n.max(0) as usize),
            r => Err(unexpected(r)),
        }
    }

    pub async fn is_empty(&self) -> Result<bool, ClientError> {
        self.boolean(MapOp::IsEmpty).await
    }

    pub async fn clear(&self) -> Result<(), ClientError> {
        self.op(MapOp::Clear).await.map(|_| ())
    }

    pub async fn get_all<K: ToData>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Vec<(Value, Value)>, ClientError> {
        let mut by_partition: HashMap<u32, Vec<Bytes>> = HashMap::new();
        for k in keys {
            let key = k.to_data();
            by_partition
                .entry(self.client.partition_of(&key))
                .or_default()
                .push(key);
        }
        let calls = by_partition
            .into_values()
            .map(|keys| self.entries(MapOp::GetAll { keys }));
        let mut out = Vec::new();
        for r in futures::future::join_all(calls).await {
            out.extend(r?);
        }
        Ok(out)
    }

    pub async fn put_all<K: ToData, V: ToData>(
        &self,
        entries: impl IntoIterator<Item = (K, V)>,
    ) -> Result<(), ClientError> {
        // One request per partition, sent to its owner: what Hazelcast
        // members expect (they refuse a putAll without a partition id).
        let mut by_partition: HashMap<u32, Vec<(Bytes, Bytes)>> = HashMap::new();
        for (k, v) in entries {
            let key = k.to_data();
            by_partition
                .entry(self.client.partition_of(&key))
                .or_default()
                .push((key, v.to_data()));
        }
        let calls = by_partition
            .into_values()
            .map(|entries| self.op(MapOp::PutAll { entries }));
        for r in futures::future::join_all(calls).await {
            r?;
        }
        Ok(())
    }

    pub async fn key_set(&self) -> Result<Vec<Value>, ClientError> {
        self.list(MapOp::KeySet).await
    }

    pub async fn values(&self) -> Result<Vec<Value>, ClientError> {
        self.list(MapOp::Values).await
    }

    pub async fn entry_set(&self) -> Result<Vec<(Value, Value)>, ClientError> {
        self.entries(MapOp::EntrySet).await
    }

    /// Changes an entry's time to live, counted from now (`None`: never expire).
    pub async fn set_ttl(
        &self,
        key: impl ToData,
        ttl: Option<Duration>,
    ) -> Result<bool, ClientError> {
        self.boolean(MapOp::SetTtl {
            key: key.to_data(),
            ttl: ttl.map(|d| d.as_millis().max(1) as i64).unwrap_or(0),
        })
        .await
    }

    pub async fn evict(&self, key: impl ToData) -> Result<bool, ClientError> {
        self.boolean(MapOp::Evict { key: key.to_data() }).await
    }

    pub async fn evict_all(&self) -> Result<(), ClientError> {
        self.op(MapOp::EvictAll).await.map(|_| ())
    }

    /// (value, hits, version) of an entry.
    pub async fn get_entry_view(
        &self,
        key: impl ToData,
    ) -> Result<Option<(Value, i64, i64)>, ClientError> {
        match self.op(MapOp::GetEntryView { key: key.to_data() }).await? {
            MapResponse::View(v) => {
                Ok(v.map(|(_, value, hits, version)| (Value(value), hits, version)))
            }
            r => Err(unexpected(r)),
        }
    }

    /// Listens to every change of this map (or of one key). Returns the
    /// listener's id and the stream of events.
    pub async fn add_entry_listener(
        &self,
        key: Option<Bytes>,
        include_value: bool,
    ) -> Result<(Uuid, mpsc::UnboundedReceiver<EntryEvent>), ClientError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let id = Uuid::new_v4();
        if let Ok(mut l) = self.client.inner.listeners.lock() {
            l.push(ListenerSpec {
                id,
                map: self.name.clone(),
                key,
                include_value,
                sink: tx,
                registrations: HashMap::new(),
            });
        }
        listener::register_missing(&self.client).await;
        Ok((id, rx))
    }

    pub async fn remove_entry_listener(&self, id: Uuid) -> Result<bool, ClientError> {
        let spec = self.client.inner.listeners.lock().ok().and_then(|mut l| {
            let i = l.iter().position(|s| s.id == id)?;
            Some(l.remove(i))
        });
        let Some(spec) = spec else { return Ok(false) };
        let registered = spec.registrations.into_iter().filter_map(|(m, r)| match r {
            Registration::On { id, .. } => Some((m, id)),
            Registration::Claimed => None,
        });
        for (member, registration) in registered {
            if let Some(conn) = self.client.connection_to(member) {
                let op = MapOp::RemoveEntryListener { registration };
                let msg =
                    ferrocast_protocol::messages::client_side::map_request(&self.name, &op, -1);
                let _ = conn
                    .request(msg, self.client.next_correlation(), Duration::from_secs(5))
                    .await;
            }
        }
        Ok(true)
    }

    /// Drops the map and its data everywhere.
    pub async fn destroy(&self) -> Result<(), ClientError> {
        self.client.destroy(&self.name).await
    }
}
