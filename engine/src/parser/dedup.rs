//! Duplicate records inside one file.
//!
//! A record's key is (mid, paytype, transaction, oid); kind and business date are fixed per file.
//! The decoder streams, so earlier rows may already be written when a later line repeats a key:
//! the first occurrence always wins. A repeat with identical values is harmless and skipped; a
//! repeat with different values is a conflict the merchant has to see. To keep memory small the
//! set holds hashes, not keys: a 128-bit xxh3 of the key, and a 64-bit xxh3 of the whole row,
//! 32 bytes per distinct key.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasherDefault, Hasher};

use xxhash_rust::xxh3::{xxh3_64, xxh3_128};

use super::fields::Record;

/// Separates text values in the hash input; 0xFF never occurs in UTF-8, so no two different
/// rows hash the same bytes.
const SEPARATOR: u8 = 0xFF;

/// What the key set says about a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    /// The first record with this key: emit it.
    New,
    /// Same key and same values as an earlier line: skip it.
    ExactDuplicate,
    /// Same key, different values: reject it, the first one stays.
    Conflict { first_line: u64 },
}

#[derive(Debug, Clone, Copy)]
struct FirstSeen {
    line: u64,
    row_hash: u64,
}

/// The keys seen so far in one file.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    first: HashMap<u128, FirstSeen, BuildHasherDefault<PassThrough>>,
    /// Hash input, reused across lines.
    buf: Vec<u8>,
}

impl KeySet {
    /// Records `record` (from `line`) if its key is new, and says how it relates to earlier lines.
    pub(crate) fn check(&mut self, record: &Record<'_>, line: u64) -> Seen {
        let (key, row_hash) = self.hashes(record);
        match self.first.entry(key) {
            Entry::Vacant(slot) => {
                slot.insert(FirstSeen { line, row_hash });
                Seen::New
            }
            Entry::Occupied(first) if first.get().row_hash == row_hash => Seen::ExactDuplicate,
            Entry::Occupied(first) => Seen::Conflict {
                first_line: first.get().line,
            },
        }
    }

    /// The key hash and the row hash. The row is hashed as it will be emitted (trimmed, decoded,
    /// parsed), so `Y` and `y`, or the two date layouts of one instant, are the same row.
    fn hashes(&mut self, r: &Record<'_>) -> (u128, u64) {
        let buf = &mut self.buf;
        buf.clear();
        for text in [r.mid, r.paytype, r.transaction, r.oid] {
            buf.extend_from_slice(text.as_bytes());
            buf.push(SEPARATOR);
        }
        let key = xxh3_128(buf);
        for text in [r.financecode, r.financename, r.buyerid] {
            buf.extend_from_slice(text.as_bytes());
            buf.push(SEPARATOR);
        }
        buf.extend_from_slice(&r.amount.to_le_bytes());
        buf.push(u8::from(r.useescrow));
        buf.extend_from_slice(&r.occurred_at.to_le_bytes());
        for text in [r.authnumber, r.status] {
            buf.extend_from_slice(text.as_bytes());
            buf.push(SEPARATOR);
        }
        (key, xxh3_64(buf))
    }
}

/// The keys are already uniformly distributed hashes: hashing them again would only cost time.
#[derive(Debug, Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used for u128 keys; a plain fold keeps the hasher correct for anything else.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u128(&mut self, value: u128) {
        // Truncation intended: the low and high halves are both uniform.
        self.0 = (value as u64) ^ ((value >> 64) as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(amount: i64) -> Record<'static> {
        Record {
            mid: "toss",
            paytype: "SC0010",
            transaction: "t1",
            oid: "o1",
            financecode: "",
            financename: "국민",
            buyerid: "b",
            amount,
            useescrow: false,
            occurred_at: 0,
            authnumber: "1",
            status: "10",
        }
    }

    #[test]
    fn first_wins_and_repeats_are_classified() {
        let mut keys = KeySet::default();
        assert_eq!(keys.check(&record(1), 3), Seen::New);
        assert_eq!(keys.check(&record(1), 4), Seen::ExactDuplicate);
        assert_eq!(keys.check(&record(2), 9), Seen::Conflict { first_line: 3 });
        // The conflicting row did not replace the first one.
        assert_eq!(keys.check(&record(1), 10), Seen::ExactDuplicate);
    }

    #[test]
    fn field_boundaries_matter() {
        let mut keys = KeySet::default();
        let a = Record {
            transaction: "t1o",
            oid: "1",
            ..record(1)
        };
        assert_eq!(keys.check(&record(1), 1), Seen::New);
        assert_eq!(keys.check(&a, 2), Seen::New);
        let b = Record {
            financecode: "국민",
            financename: "",
            ..record(1)
        };
        assert_eq!(keys.check(&b, 3), Seen::Conflict { first_line: 1 });
    }
}
