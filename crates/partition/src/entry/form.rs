//! How an entry stores a key or a value (Hazelcast `Data`) without the
//! bytes its header says anyway.
//!
//! A `Data` starts with a 4-byte partition hash (0 unless the key is
//! partition-aware) and a 4-byte type id; byte arrays and strings, what
//! most keys and values are, then repeat their own length in 4 more bytes.
//! That is 12 bytes of a 16-byte key and 12 of a 100-byte value the entry
//! can rebuild from two bits of its flags and the length it stores anyway.
//! The form is chosen from the bytes alone and is lossless: rebuilding
//! gives back exactly the bytes the client sent, whatever they mean (a
//! serializer of our own with a "length" that happens to match is rebuilt
//! just as well). So two `Data` are equal exactly when their forms and
//! bodies are, and lookups compare and hash [`Compact`] without rebuilding.

use bytes::{BufMut, Bytes, BytesMut};
use ferrocast_protocol::data::type_id;
use std::hash::{Hash, Hasher};

/// Kept as sent.
pub(super) const RAW: u8 = 0;
/// Partition hash 0, type byte array, length = rest: the rest is stored.
pub(super) const BYTE_ARRAY: u8 = 1;
/// Partition hash 0, type string, length = rest: the rest is stored.
pub(super) const STRING: u8 = 2;
/// Partition hash 0: type and payload are stored.
pub(super) const NO_HASH: u8 = 3;

/// A `Data` as an entry stores it: its form and the bytes that remain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Compact<'a> {
    pub(super) form: u8,
    pub(super) body: &'a [u8],
}

impl Hash for Compact<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u8(self.form);
        state.write(self.body);
    }
}

impl<'a> Compact<'a> {
    /// The form `data` is stored in.
    pub(crate) fn of(data: &'a [u8]) -> Compact<'a> {
        let raw = Compact {
            form: RAW,
            body: data,
        };
        let (Some(hash), Some(ty)) = (be_i32(data, 0), be_i32(data, 4)) else {
            return raw;
        };
        if hash != 0 {
            return raw;
        }
        let form = match ty {
            type_id::BYTE_ARRAY => BYTE_ARRAY,
            type_id::STRING => STRING,
            _ => NO_HASH,
        };
        let rest = data.len().saturating_sub(12);
        match be_i32(data, 8) {
            Some(len) if form != NO_HASH && usize::try_from(len).ok() == Some(rest) => Compact {
                form,
                body: &data[12..],
            },
            _ => Compact {
                form: NO_HASH,
                body: &data[4..],
            },
        }
    }

    /// What `form` leaves out of a `Data` whose stored body is `body_len`
    /// bytes long, and how many of the 12 bytes that is.
    pub(super) fn prefix(form: u8, body_len: usize) -> ([u8; 12], usize) {
        let mut p = [0u8; 12];
        let ty = match form {
            BYTE_ARRAY => type_id::BYTE_ARRAY,
            STRING => type_id::STRING,
            NO_HASH => return (p, 4),
            _ => return (p, 0),
        };
        p[4..8].copy_from_slice(&ty.to_be_bytes());
        // Bodies come from frames, far below 2^31 bytes.
        p[8..12].copy_from_slice(&(body_len as u32).to_be_bytes());
        (p, 12)
    }

    /// Length of the `Data` this rebuilds to.
    #[cfg(test)]
    fn data_len(&self) -> usize {
        Self::prefix(self.form, self.body.len()).1 + self.body.len()
    }

    /// The `Data` as the client sent it.
    pub(crate) fn to_bytes(self) -> Bytes {
        let (p, n) = Self::prefix(self.form, self.body.len());
        if n == 0 {
            return Bytes::copy_from_slice(self.body);
        }
        let mut b = BytesMut::with_capacity(n + self.body.len());
        b.put_slice(&p[..n]);
        b.put_slice(self.body);
        b.freeze()
    }

    /// Whether this is `data` (compared in place, nothing rebuilt).
    pub(crate) fn is(&self, data: &[u8]) -> bool {
        *self == Compact::of(data)
    }
}

fn be_i32(b: &[u8], at: usize) -> Option<i32> {
    let s = b.get(at..at + 4)?;
    Some(i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(hash: i32, ty: i32, payload: &[u8]) -> Vec<u8> {
        let mut v = hash.to_be_bytes().to_vec();
        v.extend_from_slice(&ty.to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    fn with_len(body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as i32).to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn every_form_rebuilds_the_bytes_it_came_from() {
        let sixteen = [7u8; 16];
        let cases: Vec<(Vec<u8>, u8, usize)> = vec![
            (
                data(0, type_id::BYTE_ARRAY, &with_len(&sixteen)),
                BYTE_ARRAY,
                16,
            ),
            (data(0, type_id::STRING, &with_len(b"a string")), STRING, 8),
            (data(0, type_id::STRING, &with_len(b"")), STRING, 0),
            (data(0, type_id::INTEGER, &42i32.to_be_bytes()), NO_HASH, 8),
            // A length that does not match the rest is kept.
            (data(0, type_id::BYTE_ARRAY, &[0, 0, 0, 9, 1]), NO_HASH, 9),
            (data(0, type_id::BYTE_ARRAY, &[0, 0, 0]), NO_HASH, 7),
            (data(0, type_id::BYTE_ARRAY, &[0xff; 4]), NO_HASH, 8),
            // Partition-aware keys, short or odd bytes stay as they are.
            (data(5, type_id::BYTE_ARRAY, &with_len(&sixteen)), RAW, 28),
            (vec![0, 0, 0, 0, 1, 2, 3], RAW, 7),
            (vec![], RAW, 0),
            (data(0, 0, &[]), NO_HASH, 4),
        ];
        for (bytes, form, stored) in cases {
            let c = Compact::of(&bytes);
            assert_eq!((c.form, c.body.len()), (form, stored), "{bytes:?}");
            assert_eq!(&c.to_bytes()[..], &bytes[..]);
            assert_eq!(c.data_len(), bytes.len());
            assert!(c.is(&bytes));
        }
    }

    #[test]
    fn different_data_never_compare_equal() {
        let a = data(0, type_id::BYTE_ARRAY, &with_len(b"key"));
        let b = data(0, type_id::STRING, &with_len(b"key"));
        let c = data(1, type_id::BYTE_ARRAY, &with_len(b"key"));
        let d = b"key".to_vec();
        for (x, y) in [(&a, &b), (&a, &c), (&a, &d), (&b, &d), (&c, &d)] {
            assert!(!Compact::of(x).is(y), "{x:?} {y:?}");
        }
    }
}
