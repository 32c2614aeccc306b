//! Values as Hazelcast serializes them, so what Rust writes Python, Java or
//! Node.js read back, and the other way round: strings, integers, floats,
//! booleans, byte arrays, and serde types as `HazelcastJsonValue`.

use crate::error::ClientError;
use bytes::Bytes;
use ferrocast_protocol::data::{self, type_id};

/// A value the client can send.
pub trait ToData {
    fn to_data(&self) -> Bytes;
}

/// A value the client can read back.
pub trait FromData: Sized {
    fn from_data(data: &[u8]) -> Result<Self, ClientError>;
}

fn payload(d: &[u8], expected: i32, what: &str) -> Result<Bytes, ClientError> {
    match data::type_of(d) {
        Some(t) if t == expected => Ok(Bytes::copy_from_slice(&d[8..])),
        Some(t) => Err(ClientError::Serialization(format!(
            "expected {what}, got type id {t}"
        ))),
        None => Err(ClientError::Serialization(
            "value shorter than its header".into(),
        )),
    }
}

fn fixed<const N: usize>(d: &[u8], t: i32, what: &str) -> Result<[u8; N], ClientError> {
    let p = payload(d, t, what)?;
    p.get(..N)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| ClientError::Serialization(format!("truncated {what}")))
}

impl ToData for str {
    fn to_data(&self) -> Bytes {
        data::string(self)
    }
}
impl ToData for String {
    fn to_data(&self) -> Bytes {
        data::string(self)
    }
}
impl<T: ToData + ?Sized> ToData for &T {
    fn to_data(&self) -> Bytes {
        (**self).to_data()
    }
}
impl FromData for String {
    fn from_data(d: &[u8]) -> Result<Self, ClientError> {
        match data::type_of(d) {
            Some(type_id::STRING) => {
                data::as_string(d).ok_or_else(|| ClientError::Serialization("bad string".into()))
            }
            Some(t) => Err(ClientError::Serialization(format!(
                "expected a string, got type id {t}"
            ))),
            None => Err(ClientError::Serialization(
                "value shorter than its header".into(),
            )),
        }
    }
}

impl ToData for i32 {
    fn to_data(&self) -> Bytes {
        data::int(*self)
    }
}
impl FromData for i32 {
    fn from_data(d: &[u8]) -> Result<Self, ClientError> {
        Ok(i32::from_be_bytes(fixed(d, type_id::INTEGER, "an int")?))
    }
}
impl ToData for i64 {
    fn to_data(&self) -> Bytes {
        data::long(*self)
    }
}
impl FromData for i64 {
    fn from_data(d: &[u8]) -> Result<Self, ClientError> {
        match data::type_of(d) {
            Some(type_id::INTEGER) => i32::from_data(d).map(i64::from),
            _ => Ok(i64::from_be_bytes(fixed(d, type_id::LONG, "a long")?)),
        }
    }
}
impl ToData for f64 {
    fn to_data(&self) -> Bytes {
        data::double(*self)
    }
}
impl FromData for f64 {
    fn from_data(d: &[u8]) -> Result<Self, ClientError> {
        Ok(f64::from_be_bytes(fixed(d, type_id::DOUBLE, "a double")?))
    }
}
impl ToData for bool {
    fn to_data(&self) -> Bytes {
        data::boolean(*self)
    }
}
impl FromData for bool {
    fn from_data(d: &[u8]) -> Result<Self, ClientError> {
        Ok(fixed::<1>(d, type_id::BOOLEAN, "a boolean")?[0] != 0)
    }
}
impl ToData for [u8] {
    fn to_data(&self) -> Bytes {
        data::byte_array(self)
    }
}
impl ToData for Vec<u8> {
    fn to_data(&self) -> Bytes {
        data::byte_array(self)
    }
}
impl FromData for Vec<u8> {
    fn from_data(d: &[u8]) -> Result<Self, ClientError> {
        let p = payload(d, type_id::BYTE_ARRAY, "a byte array")?;
        let len = p
            .get(..4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .unwrap_or(-1);
        let len = usize::try_from(len)
            .map_err(|_| ClientError::Serialization("bad byte array length".into()))?;
        p.get(4..4 + len)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| ClientError::Serialization("truncated byte array".into()))
    }
}

/// A serde value stored as a `HazelcastJsonValue` (JSON text), readable by
/// every Hazelcast client and queryable on the member side.
#[derive(Clone, Debug, PartialEq)]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> ToData for Json<T> {
    fn to_data(&self) -> Bytes {
        // Serializing plain serde data to JSON does not fail for map keys
        // that are strings; anything else is a programming error.
        let text =
            serde_json::to_string(&self.0).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
        data::json(&text)
    }
}

impl<T: serde::de::DeserializeOwned> FromData for Json<T> {
    fn from_data(d: &[u8]) -> Result<Self, ClientError> {
        if data::type_of(d) != Some(type_id::JSON) {
            return Err(ClientError::Serialization(
                "expected a HazelcastJsonValue".into(),
            ));
        }
        let text =
            data::as_string(d).ok_or_else(|| ClientError::Serialization("bad JSON text".into()))?;
        serde_json::from_str(&text)
            .map(Json)
            .map_err(|e| ClientError::Serialization(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        assert_eq!(String::from_data(&"héllo".to_data()).unwrap(), "héllo");
        assert_eq!(i32::from_data(&(-5i32).to_data()).unwrap(), -5);
        assert_eq!(i64::from_data(&(1i64 << 40).to_data()).unwrap(), 1 << 40);
        assert_eq!(i64::from_data(&7i32.to_data()).unwrap(), 7);
        assert_eq!(f64::from_data(&2.5f64.to_data()).unwrap(), 2.5);
        assert!(bool::from_data(&true.to_data()).unwrap());
        assert_eq!(
            Vec::<u8>::from_data(&vec![0u8, 255].to_data()).unwrap(),
            vec![0, 255]
        );
        let j = Json(serde_json::json!({"a": [1, 2]}));
        assert_eq!(
            Json::<serde_json::Value>::from_data(&j.to_data()).unwrap(),
            j
        );
        assert!(i32::from_data(&"x".to_data()).is_err());
        assert!(String::from_data(&[0, 1]).is_err());
    }
}
