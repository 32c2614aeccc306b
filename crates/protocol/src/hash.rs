//! Partition hashing exactly as Hazelcast does it, so that every client
//! computes the same partition for a key as the member: MurmurHash3 x86
//! 32-bit (seed 0x01000193) over the key's `Data` payload, then the
//! hash-to-index rule.

const SEED: u32 = 0x0100_0193;

/// MurmurHash3 x86 32-bit of `data` (blocks read little-endian).
pub fn murmur3_x86_32(data: &[u8], seed: u32) -> i32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h1 = seed;
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k1 = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k1 = k1.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h1 ^= k1;
        h1 = h1.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = blocks.remainder();
    let mut k1 = 0u32;
    if tail.len() >= 3 {
        k1 ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        k1 ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        k1 ^= u32::from(tail[0]);
        k1 = k1.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h1 ^= k1;
    }
    h1 ^= data.len() as u32;
    h1 ^= h1 >> 16;
    h1 = h1.wrapping_mul(0x85eb_ca6b);
    h1 ^= h1 >> 13;
    h1 = h1.wrapping_mul(0xc2b2_ae35);
    h1 ^= h1 >> 16;
    h1 as i32
}

/// Hazelcast's hash of a payload, with its seed.
pub fn hazelcast_hash(payload: &[u8]) -> i32 {
    murmur3_x86_32(payload, SEED)
}

/// Hazelcast's hash-to-index: `|hash| % count`, with `i32::MIN` mapped to 0.
pub fn hash_to_index(hash: i32, count: u32) -> u32 {
    if hash == i32::MIN || count == 0 {
        0
    } else {
        hash.unsigned_abs() % count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_vectors() {
        // Published MurmurHash3_x86_32 vectors.
        assert_eq!(murmur3_x86_32(b"", 0), 0);
        assert_eq!(murmur3_x86_32(b"", 1) as u32, 0x514e_28b7);
        assert_eq!(murmur3_x86_32(b"", 0xffff_ffff) as u32, 0x81f1_6f39);
        assert_eq!(murmur3_x86_32(&[0, 0, 0, 0], 0) as u32, 0x2362_f9de);
        assert_eq!(murmur3_x86_32(b"Hello, world!", 1234) as u32, 0xfaf6_cdb3);
        assert_eq!(
            murmur3_x86_32(b"The quick brown fox jumps over the lazy dog", 0x9747_b28c) as u32,
            0x2fa8_26cd
        );
        assert_eq!(murmur3_x86_32(&[0x21, 0x43, 0x65], 0) as u32, 0x7e4a_8634);
    }

    #[test]
    fn index_rule() {
        assert_eq!(hash_to_index(i32::MIN, 271), 0);
        assert_eq!(hash_to_index(-5, 271), 5);
        assert_eq!(hash_to_index(276, 271), 5);
    }
}
