//! Duplicate records inside one file, in memory that does not grow with the file.
//!
//! A record's key is (mid, paytype, transaction, oid); kind and business date are fixed per file.
//! The decoder streams, so earlier rows may already be written when a later line repeats a key:
//! the first occurrence always wins. A repeat with identical values is harmless and skipped; a
//! repeat with different values is a conflict the merchant has to see. Each key is known by a
//! 128-bit xxh3 of its fields (two different keys share one with probability about 10⁻²⁵ in a
//! file of 10 million rows), each row by a 64-bit xxh3 of all its values.
//!
//! # Memory and speed
//! Holding every key seen costs 32 bytes a key (about 160 MB at 5 million rows, more with the
//! hash table's slack), which made a large file's load need memory in proportion to the file.
//! And looking each key up in a table that large is a cache miss or two per row, which the
//! profile showed as a fifth of the parse thread's time. So the set is an LSM tree in miniature:
//! - the most recent first occurrences (up to [`RECENT_KEYS`]) are kept in memory, in line
//!   order; when there are that many, they are sorted by key and written as one *run* to an
//!   anonymous temporary file (deleted by the OS however the process ends);
//! - once a file has more than a few thousand keys, every key also goes into one Bloom filter of
//!   fixed size ([`FILTER_BYTES`]): the split-block filter of the Parquet format, one 32-byte
//!   block per key. A key the filter has never seen is new: one memory access decides the
//!   common case, with no table lookup at all. That access still misses the CPU's caches (the
//!   profile showed it as a sixth of the parse thread), so the ordered check asks for the block
//!   ([`KeySet::prefetch`]) a few rows before it looks the key up, and checks those rows while
//!   it arrives. (The `parquet` crate's filter is the same algorithm, but does not
//!   say where a key's block is, so it can't be prefetched: hence the few lines below.);
//! - only when the filter says a key may have been seen are the recent keys (through a hash
//!   index, built as it is needed) and then the runs searched. Each run keeps the first key of
//!   every block of [`BLOCK_KEYS`] entries in memory, so a lookup reads one block per run.
//!
//! The answer is exact either way: the filter decides whether the keys are searched, never what
//! the answer is. What grows with the file is only the runs' sparse index (an eighth of a byte a
//! key, about 1 MB at 10 million rows), the temporary file (32 bytes a key, mostly in the page
//! cache), and the filter's false-positive rate (a few in 100 000 at 5 million keys, a few
//! in 1 000 at 10 million), which costs searches, not correctness.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;

use hashbrown::HashTable;
use xxhash_rust::xxh3::{xxh3_64, xxh3_128};

use super::fields::Record;

/// Separates text values in the hash input; 0xFF never occurs in UTF-8, so no two different
/// rows hash the same bytes.
const SEPARATOR: u8 = 0xFF;

/// Keys held in the in-memory table before it is written out as a run: 8 MiB of entries plus
/// about 2.5 MiB of table.
pub(crate) const RECENT_KEYS: usize = 1 << 18;

/// The size of the filter over every key.
const FILTER_BYTES: usize = 16 << 20;

/// Keys up to which a file does without the filter: their table is small enough to stay in
/// the CPU's caches, and a small file should not pay for zeroing the filter.
const UNFILTERED_KEYS: usize = 1 << 15;

/// Linear searches of the recent keys not indexed yet, per run, before they are indexed.
const SCANS_BEFORE_INDEXING: u32 = 8;

/// Entries per block of a run: the unit read from disk (2 KiB) and indexed in memory.
const BLOCK_KEYS: usize = 64;

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

/// The first occurrence of a key: 32 bytes, in memory and on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    key: u128,
    line: u64,
    row_hash: u64,
}

const ENTRY_BYTES: usize = 32;

impl Entry {
    fn classify(&self, row_hash: u64) -> Seen {
        if self.row_hash == row_hash {
            Seen::ExactDuplicate
        } else {
            Seen::Conflict {
                first_line: self.line,
            }
        }
    }

    fn to_bytes(self) -> [u8; ENTRY_BYTES] {
        let mut bytes = [0; ENTRY_BYTES];
        bytes[..16].copy_from_slice(&self.key.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.line.to_le_bytes());
        bytes[24..].copy_from_slice(&self.row_hash.to_le_bytes());
        bytes
    }

    fn from_bytes(bytes: &[u8]) -> Self {
        let word = |range: std::ops::Range<usize>| {
            u64::from_le_bytes(bytes[range].try_into().expect("8 bytes"))
        };
        Entry {
            key: u128::from_le_bytes(bytes[..16].try_into().expect("16 bytes")),
            line: word(16..24),
            row_hash: word(24..32),
        }
    }
}

/// The keys seen so far in one file.
#[derive(Debug)]
pub(crate) struct KeySet {
    /// The most recent first occurrences, in line order.
    recent: Vec<Entry>,
    /// Indexes into `recent[..indexed]`, hashed by key.
    index: HashTable<u32>,
    indexed: usize,
    /// Searches of the unindexed entries since the last run was written.
    scans: u32,
    /// How many entries `recent` holds before it is written out.
    capacity: usize,
    /// Every key seen, once there are more than [`UNFILTERED_KEYS`] (or `capacity`).
    filter: Option<Filter>,
    /// The keys written out, once there are any.
    spilled: Option<Spilled>,
    /// The first I/O error of the temporary file; the caller fails the file with it.
    failure: Option<io::Error>,
}

impl Default for KeySet {
    fn default() -> Self {
        KeySet::with_capacity(RECENT_KEYS)
    }
}

impl KeySet {
    /// A set that keeps at most `capacity` keys in memory (at least one).
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, u32::MAX as usize);
        KeySet {
            recent: Vec::new(),
            index: HashTable::new(),
            indexed: 0,
            scans: 0,
            capacity,
            filter: None,
            spilled: None,
            failure: None,
        }
    }

    /// Records `record` (from `line`) if its key is new, and says how it relates to earlier lines.
    #[cfg(test)]
    pub(crate) fn check(&mut self, record: &Record<'_>, line: u64) -> Seen {
        let (key, row_hash) = record_hashes(&mut Vec::new(), record);
        self.check_hashed(key, row_hash, line)
    }

    /// Records the row of key hash `key` and row hash `row_hash` (see [`record_hashes`]), read
    /// from `line`, if its key is new, and says how it relates to earlier lines.
    pub(crate) fn check_hashed(&mut self, key: u128, row_hash: u64, line: u64) -> Seen {
        let maybe_seen = self
            .filter
            .as_ref()
            .is_none_or(|filter| filter.check(fold(key)));
        if maybe_seen && let Some(first) = self.find(key) {
            return first.classify(row_hash);
        }
        self.recent.push(Entry {
            key,
            line,
            row_hash,
        });
        match &mut self.filter {
            Some(filter) => filter.insert(fold(key)),
            None => {
                self.index_recent();
                if self.recent.len() >= UNFILTERED_KEYS.min(self.capacity) {
                    let mut filter = Filter::new(FILTER_BYTES);
                    for entry in &self.recent {
                        filter.insert(fold(entry.key));
                    }
                    self.filter = Some(filter);
                }
            }
        }
        if self.recent.len() >= self.capacity {
            self.spill();
        }
        Seen::New
    }

    /// Starts fetching the filter block of `key` into the CPU's caches, so that it is there
    /// when [`KeySet::check_hashed`] asks for it a few rows later.
    pub(crate) fn prefetch(&self, key: u128) {
        if let Some(filter) = &self.filter {
            filter.prefetch(fold(key));
        }
    }

    /// The first I/O error met while writing or reading the temporary file, if any. Answers
    /// given after it may have missed a duplicate, so the file must not be loaded.
    pub(crate) fn take_failure(&mut self) -> Option<io::Error> {
        self.failure.take()
    }

    /// The first occurrence of `key`, in memory or written out.
    fn find(&mut self, key: u128) -> Option<Entry> {
        // Indexing costs a table insert per key; while the filter's answers are only the rare
        // false positive, scanning the keys not indexed yet costs less. A file with many
        // repeats gets the index after a few scans.
        let unindexed = &self.recent[self.indexed..];
        if self.scans < SCANS_BEFORE_INDEXING && !unindexed.is_empty() {
            self.scans += 1;
            if let Some(entry) = unindexed.iter().find(|entry| entry.key == key) {
                return Some(*entry);
            }
        } else {
            self.index_recent();
        }
        let recent = &self.recent;
        if let Some(&at) = self
            .index
            .find(fold(key), |&at| recent[at as usize].key == key)
        {
            return Some(recent[at as usize]);
        }
        match self.spilled.as_ref()?.find(key) {
            Ok(found) => found,
            Err(err) => {
                self.failure.get_or_insert(err);
                None
            }
        }
    }

    /// Brings the hash index up to date with `recent`.
    fn index_recent(&mut self) {
        let recent = &self.recent;
        for at in self.indexed..recent.len() {
            self.index
                .insert_unique(fold(recent[at].key), at as u32, |&at| {
                    fold(recent[at as usize].key)
                });
        }
        self.indexed = recent.len();
    }

    /// Writes the in-memory entries out as a sorted run and empties them. If the temporary
    /// file can't be written, keeps them (memory grows, answers stay exact).
    fn spill(&mut self) {
        let spilled = match &mut self.spilled {
            Some(spilled) => spilled,
            None => match Spilled::new() {
                Ok(spilled) => self.spilled.insert(spilled),
                Err(err) => return self.keep_in_memory(err),
            },
        };
        // The index is rebuilt (when needed) after the sort moves the entries.
        self.index.clear();
        self.indexed = 0;
        self.scans = 0;
        // By the high half only: cheaper to compare, and a run is searched by high halves.
        self.recent
            .sort_unstable_by_key(|entry| (entry.key >> 64) as u64);
        if let Err(err) = spilled.append_run(&self.recent) {
            return self.keep_in_memory(err);
        }
        self.recent.clear();
    }

    fn keep_in_memory(&mut self, err: io::Error) {
        tracing::warn!(
            "cannot write the duplicate-key check's temporary file ({err}); keeping every key \
             in memory instead"
        );
        self.capacity = usize::MAX;
    }
}

/// The key hash and the row hash of a record, computed with `buf` as scratch space. The row is
/// hashed as it will be emitted (trimmed, decoded, parsed), so `Y` and `y`, or the two date
/// layouts of one instant, are the same row. Pure, so the parse workers compute it in parallel
/// and the ordered duplicate check only looks the hashes up.
pub(crate) fn record_hashes(buf: &mut Vec<u8>, r: &Record<'_>) -> (u128, u64) {
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

/// A split-block Bloom filter, as the Parquet format specifies it: a key sets one bit in each of
/// the eight 32-bit words of one 32-byte block, so a lookup reads one cache line.
#[derive(Debug)]
struct Filter {
    blocks: Vec<[u32; 8]>,
}

/// The Parquet specification's salts, one per word of a block.
const SALT: [u32; 8] = [
    0x47b6_137b,
    0x4497_4d91,
    0x8824_ad5b,
    0xa2b7_289d,
    0x7054_95c7,
    0x2df1_424b,
    0x9efc_4947,
    0x5c6b_fb31,
];

impl Filter {
    /// A filter of `bytes` bytes (whole blocks). Zeroed memory is only touched as keys arrive.
    fn new(bytes: usize) -> Self {
        Filter {
            blocks: vec![[0; 8]; (bytes / 32).max(1)],
        }
    }

    /// The block of `hash`: its high half scaled to the block count.
    fn block(&self, hash: u64) -> usize {
        (((hash >> 32) * self.blocks.len() as u64) >> 32) as usize
    }

    /// The bit of `hash` in each word of its block.
    fn mask(hash: u64) -> [u32; 8] {
        let low = hash as u32;
        SALT.map(|salt| 1 << (low.wrapping_mul(salt) >> 27))
    }

    fn insert(&mut self, hash: u64) {
        let block = self.block(hash);
        for (word, bit) in self.blocks[block].iter_mut().zip(Self::mask(hash)) {
            *word |= bit;
        }
    }

    fn check(&self, hash: u64) -> bool {
        let block = &self.blocks[self.block(hash)];
        block
            .iter()
            .zip(Self::mask(hash))
            .all(|(word, bit)| word & bit != 0)
    }

    fn prefetch(&self, hash: u64) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            let block = &self.blocks[self.block(hash)];
            // SAFETY: a prefetch is a hint that never faults and reads nothing the program sees;
            // the pointer is to a live block besides.
            #[allow(unsafe_code)]
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(block.as_ptr().cast())
            };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = hash;
    }
}

/// The 64-bit table hash of a key that is already a uniform hash.
fn fold(key: u128) -> u64 {
    (key as u64) ^ ((key >> 64) as u64)
}

/// The keys written out: sorted runs in one temporary file.
#[derive(Debug)]
struct Spilled {
    file: File,
    /// Bytes written so far; the next run starts here.
    end: u64,
    runs: Vec<Run>,
}

/// One sorted run: where it is in the file and the first key of each of its blocks.
#[derive(Debug)]
struct Run {
    offset: u64,
    entries: usize,
    /// The high 64 bits of the first key of every block.
    fences: Vec<u64>,
}

impl Spilled {
    fn new() -> io::Result<Self> {
        Ok(Spilled {
            file: tempfile::tempfile()?,
            end: 0,
            runs: Vec::new(),
        })
    }

    /// Appends `sorted` (sorted by key) as a new run.
    fn append_run(&mut self, sorted: &[Entry]) -> io::Result<()> {
        let mut out = BufWriter::with_capacity(1 << 16, &self.file);
        let mut fences = Vec::with_capacity(sorted.len().div_ceil(BLOCK_KEYS));
        for (i, entry) in sorted.iter().enumerate() {
            if i % BLOCK_KEYS == 0 {
                fences.push((entry.key >> 64) as u64);
            }
            out.write_all(&entry.to_bytes())?;
        }
        out.flush()?;
        drop(out);
        self.runs.push(Run {
            offset: self.end,
            entries: sorted.len(),
            fences,
        });
        self.end += (sorted.len() * ENTRY_BYTES) as u64;
        Ok(())
    }

    /// The entry of `key` in any run (a key is in one run at most).
    fn find(&self, key: u128) -> io::Result<Option<Entry>> {
        let high = (key >> 64) as u64;
        let mut block = [0u8; BLOCK_KEYS * ENTRY_BYTES];
        for run in &self.runs {
            // Blocks whose key range may hold `key`: the last one starting below its high
            // half, and every one starting at it (more than one only if high halves repeat).
            let at = run.fences.partition_point(|&fence| fence < high);
            let same_high = run.fences[at..].iter().take_while(|&&fence| fence == high);
            let candidates = at
                .checked_sub(1)
                .into_iter()
                .chain(at..at + same_high.count());
            for b in candidates {
                let start = b * BLOCK_KEYS;
                let len = (run.entries - start).min(BLOCK_KEYS) * ENTRY_BYTES;
                let bytes = &mut block[..len];
                self.file
                    .read_exact_at(bytes, run.offset + (start * ENTRY_BYTES) as u64)?;
                let found = bytes
                    .chunks_exact(ENTRY_BYTES)
                    .map(Entry::from_bytes)
                    .find(|entry| entry.key == key);
                if found.is_some() {
                    return Ok(found);
                }
            }
        }
        Ok(None)
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

    /// Distinct transactions `t0`, `t1`, ... with amount `amount`.
    fn numbered(texts: &[String], n: usize, amount: i64) -> Record<'_> {
        Record {
            transaction: &texts[n],
            ..record(amount)
        }
    }

    #[test]
    fn keys_written_out_are_still_found_exactly() {
        // A table of 7 keys spills after every 7 new keys: 1000 keys make 142 runs, with
        // blocks of 64 and a last, partial block in every run.
        let texts: Vec<String> = (0..1000).map(|n| format!("t{n}")).collect();
        let mut keys = KeySet::with_capacity(7);
        for n in 0..1000 {
            assert_eq!(keys.check(&numbered(&texts, n, 1), n as u64 + 1), Seen::New);
        }
        assert_eq!(keys.spilled.as_ref().map(|s| s.runs.len()), Some(142));
        assert_eq!(keys.recent.len(), 1000 - 142 * 7);
        for n in (0..1000).rev() {
            let line = 2000 + n as u64;
            assert_eq!(
                keys.check(&numbered(&texts, n, 1), line),
                Seen::ExactDuplicate,
                "{n}"
            );
            assert_eq!(
                keys.check(&numbered(&texts, n, 2), line),
                Seen::Conflict {
                    first_line: n as u64 + 1
                },
                "{n}"
            );
        }
        // Neither repeat was recorded: still 1000 keys, the first occurrences.
        let held = keys.recent.len()
            + keys
                .spilled
                .as_ref()
                .map_or(0, |s| s.runs.iter().map(|run| run.entries).sum::<usize>());
        assert_eq!(held, 1000);
        assert!(keys.take_failure().is_none());
    }

    #[test]
    fn a_large_run_is_searched_block_by_block() {
        // One run of 10 000 keys: 157 blocks, searched by its fences.
        let texts: Vec<String> = (0..10_001).map(|n| format!("t{n}")).collect();
        let mut keys = KeySet::with_capacity(10_000);
        for n in 0..10_000 {
            assert_eq!(keys.check(&numbered(&texts, n, 5), n as u64 + 1), Seen::New);
        }
        assert_eq!(keys.spilled.as_ref().map(|s| s.runs.len()), Some(1));
        assert!(keys.recent.is_empty());
        for n in (0..10_000).step_by(7) {
            assert_eq!(
                keys.check(&numbered(&texts, n, 6), 1),
                Seen::Conflict {
                    first_line: n as u64 + 1
                }
            );
        }
        assert_eq!(keys.check(&numbered(&texts, 10_000, 5), 20_000), Seen::New);
    }

    #[test]
    fn repeats_of_keys_not_indexed_yet_are_found_by_scans_then_by_the_index() {
        // The filter starts at UNFILTERED_KEYS keys; the keys after it are not indexed until
        // a lookup needs them, first by scanning, after SCANS_BEFORE_INDEXING by the index.
        let n = UNFILTERED_KEYS + 500;
        let texts: Vec<String> = (0..n).map(|n| format!("t{n}")).collect();
        let mut keys = KeySet::with_capacity(2 * n);
        for i in 0..n {
            assert_eq!(keys.check(&numbered(&texts, i, 1), i as u64 + 1), Seen::New);
        }
        assert!(keys.filter.is_some());
        assert_eq!(keys.indexed, UNFILTERED_KEYS);
        for (repeat, i) in (UNFILTERED_KEYS..n)
            .step_by(25)
            .chain([3, 7000])
            .enumerate()
        {
            assert_eq!(
                keys.check(&numbered(&texts, i, 2), 1),
                Seen::Conflict {
                    first_line: i as u64 + 1
                },
                "{i}"
            );
            let expected = if repeat < SCANS_BEFORE_INDEXING as usize {
                UNFILTERED_KEYS
            } else {
                n
            };
            assert_eq!(keys.indexed, expected, "after repeat {repeat}");
        }
        assert_eq!(keys.recent.len(), n);
    }

    #[test]
    fn the_filter_knows_every_key_and_few_others() {
        let mut filter = Filter::new(64 << 10);
        let hash = |n: u64| xxh3_64(&n.to_le_bytes());
        for n in 0..10_000 {
            filter.insert(hash(n));
        }
        assert!((0..10_000).all(|n| filter.check(hash(n))));
        // 2048 blocks for 10 000 keys: about 2 in 10 million others pass.
        let passed = (10_000..110_000).filter(|&n| filter.check(hash(n))).count();
        assert!(passed < 10, "{passed} of 100 000 unknown keys passed");
    }

    #[test]
    fn entries_round_trip_through_their_bytes() {
        let entry = Entry {
            key: u128::MAX - 12345,
            line: 1 << 40,
            row_hash: 0xDEAD_BEEF,
        };
        assert_eq!(Entry::from_bytes(&entry.to_bytes()), entry);
    }
}
