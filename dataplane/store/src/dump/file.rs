//! Whole RDB files: what SAVE writes and what the server reads at start.
//!
//! A file is `REDIS` and four version digits, auxiliary fields, the function libraries, then for
//! each database a SELECTDB, a RESIZEDB and its keys (an optional expiry, the object's type byte,
//! the key, the value), an EOF opcode and the CRC64 of everything before it. Each shard encodes
//! its own keys into [`Section`]s; one [`RdbWriter`] puts the sections of every shard into the
//! file, computing the checksum as it writes.
//!
//! ```
//! use ember_store::dump::{read_rdb_file, RdbWriter, RestoreLimits, Section};
//! use ember_store::Value;
//!
//! let mut section = Section::new(0);
//! assert!(section.push(b"greeting", &Value::from_bytes(b"hello"), Some(4_102_444_800_000), 0));
//! let mut file = RdbWriter::start(Vec::new(), section.version(), &[("redis-ver", "7.2.4")]).unwrap();
//! file.database(0, section.keys(), section.expires()).unwrap();
//! file.section(&section).unwrap();
//! let bytes = file.finish().unwrap();
//!
//! let read = read_rdb_file(&bytes, &RestoreLimits::default(), 0).unwrap();
//! assert_eq!(read.keys[0].key, b"greeting");
//! assert_eq!(read.keys[0].expire_at_ms, Some(4_102_444_800_000));
//! ```

use std::io::{self, Write};

use super::rdb::{crc64_update, put_length, put_string, Reader};
use super::{read_object, write_object, DumpError, RestoreLimits, RDB_VERSION, RDB_VERSION_MAX};
use crate::value::Value;

/// Valkey 8's slot sizes before a cluster node's keys (a slot and two sizes), skipped.
const OP_SLOT_INFO: u8 = 0xF4;
/// A function library's code (Redis 7.0).
const OP_FUNCTION2: u8 = 0xF5;
/// Redis 7.0's release candidates' functions, which its releases refuse too.
const OP_FUNCTION_PRE_GA: u8 = 0xF6;
/// A module's auxiliary data.
const OP_MODULE_AUX: u8 = 0xF7;
const OP_IDLE: u8 = 0xF8;
const OP_FREQ: u8 = 0xF9;
const OP_AUX: u8 = 0xFA;
const OP_RESIZEDB: u8 = 0xFB;
const OP_EXPIRETIME_MS: u8 = 0xFC;
const OP_EXPIRETIME: u8 = 0xFD;
const OP_SELECTDB: u8 = 0xFE;
const OP_EOF: u8 = 0xFF;
/// The first RDB version with a checksum after EOF.
const CHECKSUM_VERSION: u16 = 5;
/// Bytes of one piece of a section's body. Pieces, not one growing buffer: doubling a buffer of
/// tens of megabytes copies it whole, a pause of milliseconds on the shard that encodes.
const PIECE_BYTES: usize = 1 << 20;

/// The keys of one database that one shard holds, encoded as an RDB file's body holds them.
#[derive(Debug, Default)]
pub struct Section {
    db: usize,
    /// The encoded keys, in pieces of about [`PIECE_BYTES`].
    body: Vec<Vec<u8>>,
    keys: u64,
    expires: u64,
    version: u16,
    skipped: u64,
    /// One value's encoding, before its key is put between its type byte and the rest.
    scratch: Vec<u8>,
}

impl Section {
    /// An empty section of database `db`.
    pub fn new(db: usize) -> Self {
        Self {
            db,
            version: RDB_VERSION,
            ..Self::default()
        }
    }

    /// Appends `key` with `value` and its expiry; false, with nothing appended, for a value
    /// whose type an RDB file cannot hold (tensors, Top-K), which is counted in
    /// [`Section::skipped`].
    pub fn push(
        &mut self,
        key: &[u8],
        value: &Value,
        expire_at_ms: Option<u64>,
        now_ms: u64,
    ) -> bool {
        self.scratch.clear();
        let Some(version) = write_object(&mut self.scratch, value, now_ms) else {
            self.skipped += 1;
            return false;
        };
        // The expiry, the key's length and the key, the value: at most this many bytes.
        let needed = 9 + 9 + key.len() + self.scratch.len();
        let body = match self.body.last_mut() {
            Some(piece) if piece.len() + needed <= piece.capacity() => piece,
            _ => {
                self.body.push(Vec::with_capacity(PIECE_BYTES.max(needed)));
                self.body.last_mut().expect("just pushed")
            }
        };
        if let Some(at) = expire_at_ms {
            body.push(OP_EXPIRETIME_MS);
            body.extend_from_slice(&at.to_le_bytes());
            self.expires += 1;
        }
        body.push(self.scratch[0]);
        put_string(body, key);
        body.extend_from_slice(&self.scratch[1..]);
        self.version = self.version.max(version);
        self.keys += 1;
        true
    }

    /// The database.
    pub fn db(&self) -> usize {
        self.db
    }

    /// Keys written.
    pub fn keys(&self) -> u64 {
        self.keys
    }

    /// Keys written with an expiry.
    pub fn expires(&self) -> u64 {
        self.expires
    }

    /// Keys left out: their type has no RDB encoding.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The RDB version the encodings need (Redis 7.4's for hashes with field expiries).
    pub fn version(&self) -> u16 {
        self.version
    }

    /// True when no key was written.
    pub fn is_empty(&self) -> bool {
        self.keys == 0
    }
}

/// Writes an RDB file to `W`, its CRC64 computed along the way.
pub struct RdbWriter<W: Write> {
    out: W,
    crc: u64,
}

impl<W: Write> RdbWriter<W> {
    /// Writes the header of an RDB file of `version` (the newest any section needs) and the
    /// auxiliary fields `aux`.
    ///
    /// # Errors
    /// The writer's.
    pub fn start(out: W, version: u16, aux: &[(&str, &str)]) -> io::Result<Self> {
        let mut writer = Self { out, crc: 0 };
        let mut head = format!("REDIS{version:04}").into_bytes();
        for (name, value) in aux {
            head.push(OP_AUX);
            put_string(&mut head, name.as_bytes());
            put_string(&mut head, value.as_bytes());
        }
        writer.write(&head)?;
        Ok(writer)
    }

    /// Writes a function library's code.
    ///
    /// # Errors
    /// The writer's.
    pub fn function(&mut self, code: &[u8]) -> io::Result<()> {
        let mut bytes = vec![OP_FUNCTION2];
        put_string(&mut bytes, code);
        self.write(&bytes)
    }

    /// Starts database `db`, which holds `keys` keys, `expires` of them with an expiry; its
    /// sections follow.
    ///
    /// # Errors
    /// The writer's.
    pub fn database(&mut self, db: usize, keys: u64, expires: u64) -> io::Result<()> {
        let mut bytes = vec![OP_SELECTDB];
        put_length(&mut bytes, db as u64);
        bytes.push(OP_RESIZEDB);
        put_length(&mut bytes, keys);
        put_length(&mut bytes, expires);
        self.write(&bytes)
    }

    /// Writes the keys of `section` (of the database last started).
    ///
    /// # Errors
    /// The writer's.
    pub fn section(&mut self, section: &Section) -> io::Result<()> {
        for piece in &section.body {
            self.write(piece)?;
        }
        Ok(())
    }

    /// Writes EOF and the checksum; returns the writer.
    ///
    /// # Errors
    /// The writer's.
    pub fn finish(mut self) -> io::Result<W> {
        self.write(&[OP_EOF])?;
        let crc = self.crc;
        self.out.write_all(&crc.to_le_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.crc = crc64_update(self.crc, bytes);
        self.out.write_all(bytes)
    }
}

/// A key read from an RDB file: its database, name, value and expiry.
#[derive(Debug, Clone, PartialEq)]
pub struct RdbKey {
    /// The database (SELECTDB).
    pub db: u64,
    /// The key.
    pub key: Vec<u8>,
    /// The value.
    pub value: Value,
    /// Its expiry, Unix milliseconds.
    pub expire_at_ms: Option<u64>,
}

/// What an RDB file holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RdbFile {
    /// Its keys, in the file's order (expired ones included: the reader decides).
    pub keys: Vec<RdbKey>,
    /// Its function libraries' code.
    pub functions: Vec<Vec<u8>>,
}

/// Reads a whole RDB file (`REDIS` and a 4-digit version up to [`RDB_VERSION_MAX`]): its keys
/// and function libraries, skipping auxiliary fields, size hints and LRU/LFU data. From version
/// 5 on, the checksum after EOF is checked unless it is zero (Redis's `rdbchecksum no`).
///
/// # Errors
/// [`DumpError::Checksum`] for a missing header, a newer version or a wrong checksum;
/// [`DumpError::BadFormat`] for anything unreadable, module data (but RedisBloom's Bloom and
/// cuckoo filters and count-min sketches) included.
pub fn read_rdb_file(
    file: &[u8],
    limits: &RestoreLimits,
    now_ms: u64,
) -> Result<RdbFile, DumpError> {
    let version = file
        .get(..9)
        .filter(|header| header.starts_with(b"REDIS"))
        .and_then(|header| std::str::from_utf8(&header[5..]).ok())
        .and_then(|digits| digits.parse::<u16>().ok())
        .ok_or(DumpError::Checksum)?;
    if version > RDB_VERSION_MAX {
        return Err(DumpError::Checksum);
    }
    let mut reader = Reader::new(&file[9..]);
    let mut read = RdbFile::default();
    let (mut db, mut expire_at_ms) = (0, None);
    loop {
        match reader.byte()? {
            OP_EOF => break,
            OP_SELECTDB => db = reader.length()?,
            OP_RESIZEDB => {
                reader.length()?;
                reader.length()?;
            }
            OP_SLOT_INFO => {
                for _ in 0..3 {
                    reader.length()?;
                }
            }
            OP_AUX => {
                reader.string()?;
                reader.string()?;
            }
            OP_FUNCTION2 => read.functions.push(reader.string()?),
            OP_FUNCTION_PRE_GA | OP_MODULE_AUX => return Err(DumpError::BadFormat),
            OP_EXPIRETIME_MS => expire_at_ms = Some(reader.millis()?),
            OP_EXPIRETIME => {
                let seconds = u32::from_le_bytes(reader.take(4)?.try_into().expect("4 bytes"));
                expire_at_ms = Some(u64::from(seconds) * 1000);
            }
            OP_IDLE => {
                reader.length()?;
            }
            OP_FREQ => {
                reader.byte()?;
            }
            kind => {
                let key = reader.string()?;
                let value = read_object(&mut reader, kind, limits, now_ms)?;
                read.keys.push(RdbKey {
                    db,
                    key,
                    value,
                    expire_at_ms: expire_at_ms.take(),
                });
            }
        }
    }
    if version >= CHECKSUM_VERSION {
        let checked = file.len() - reader.remaining();
        let stored = u64::from_le_bytes(reader.take(8)?.try_into().expect("8 bytes"));
        if stored != 0 && stored != crc64_update(0, &file[..checked]) {
            return Err(DumpError::Checksum);
        }
    }
    Ok(read)
}
