//! Where a capture's bytes come from: a memory map of a regular file, read in place, or a buffer
//! that a stream fills as the reader advances (a pipe, standard input, a gzip decoder) or that
//! holds bytes handed over whole. The record parsers see one slice either way; the reader asks
//! for the next record's bytes (`fill_to`) before it parses them.

use std::{
    fs::File,
    io::{self, Read},
};

use flate2::read::MultiGzDecoder;
use memmap2::Mmap;

/// How much of a mapped file is read between two releases of the pages behind the reader.
const RELEASE_CHUNK: usize = 16 << 20;
/// Bytes asked of a stream at a time: few reads per record, little memory.
const READ_CHUNK: usize = 256 << 10;
/// Bytes consumed before a stream's buffer is compacted: a memmove of less than one record and
/// one read, rarely.
const COMPACT_AT: usize = 1 << 20;
/// The first two bytes of a gzip file (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

pub(super) enum Input {
    Mapped {
        map: Mmap,
        /// Start of the part of the map not yet released by `consume`.
        released: usize,
    },
    Buffered(Buffer),
}

pub(super) struct Buffer {
    bytes: Vec<u8>,
    /// Where more bytes come from; `None` once it ended, or for bytes handed over whole.
    source: Option<Box<dyn Read + Send>>,
    /// Why the stream ended early, until the reader takes it.
    failure: Option<io::Error>,
    /// Bytes of the stream dropped from the front of `bytes`: the offset of `bytes[0]`.
    dropped: u64,
    /// Whether total length of the stream is `bytes.len()` from the start (handed over whole).
    whole: bool,
}

impl Input {
    /// A regular file, memory-mapped; a gzip file through a decoder.
    pub(super) fn mapped(file: File) -> io::Result<Input> {
        // SAFETY: the map is read-only and private to this reader. If another process truncates
        // the file while we read it, accessing the lost pages raises SIGBUS: the trade-off every
        // mmap-based reader (ripgrep for one) accepts for reading without copies.
        let map = unsafe { Mmap::map(&file) }?;
        if map.starts_with(&GZIP_MAGIC) {
            // Mapping and decoding leave the file's position at 0.
            return Ok(Input::stream(Box::new(io::BufReader::new(file))));
        }
        #[cfg(unix)]
        {
            // Only a hint for read-ahead; reading is correct without it.
            let _ = map.advise(memmap2::Advice::Sequential);
        }
        Ok(Input::Mapped { map, released: 0 })
    }

    /// A stream read as the reader advances (pipe, standard input); gzip is decompressed.
    pub(super) fn stream(source: Box<dyn Read + Send>) -> Input {
        let mut buffer = Buffer {
            bytes: Vec::new(),
            source: Some(source),
            failure: None,
            dropped: 0,
            whole: false,
        };
        buffer.fill_to(GZIP_MAGIC.len());
        if buffer.bytes.starts_with(&GZIP_MAGIC)
            && let Some(rest) = buffer.source.take()
        {
            let read = io::Cursor::new(std::mem::take(&mut buffer.bytes));
            buffer.source = Some(Box::new(MultiGzDecoder::new(read.chain(rest))));
        }
        Input::Buffered(buffer)
    }

    /// Bytes handed over whole; gzip is decompressed as the reader advances.
    pub(super) fn memory(bytes: Vec<u8>) -> Input {
        if bytes.starts_with(&GZIP_MAGIC) {
            return Input::stream(Box::new(io::Cursor::new(bytes)));
        }
        Input::Buffered(Buffer {
            bytes,
            source: None,
            failure: None,
            dropped: 0,
            whole: true,
        })
    }

    /// The bytes at hand: the whole file when mapped, the part of the stream read and kept.
    #[inline]
    pub(super) fn bytes(&self) -> &[u8] {
        match self {
            Input::Mapped { map, .. } => map,
            Input::Buffered(buffer) => &buffer.bytes,
        }
    }

    /// Offset in the file or stream of `bytes()[0]`.
    #[inline]
    pub(super) fn dropped(&self) -> u64 {
        match self {
            Input::Mapped { .. } => 0,
            Input::Buffered(buffer) => buffer.dropped,
        }
    }

    /// Length of the file, when known before reading it all (not for a stream).
    pub(super) fn total_len(&self) -> Option<u64> {
        match self {
            Input::Mapped { map, .. } => Some(map.len() as u64),
            Input::Buffered(buffer) => buffer.whole.then_some(buffer.bytes.len() as u64),
        }
    }

    /// Whether more bytes may come: the reader then asks for each record with `fill_to`.
    #[inline]
    pub(super) fn streaming(&self) -> bool {
        matches!(
            self,
            Input::Buffered(Buffer {
                source: Some(_),
                ..
            })
        )
    }

    /// Makes `bytes()` at least `end` long if the stream has that much.
    pub(super) fn fill_to(&mut self, end: usize) {
        if let Input::Buffered(buffer) = self {
            buffer.fill_to(end);
        }
    }

    /// Forgets the bytes before `offset`, which the reader is done with, and returns by how
    /// much the offsets into `bytes()` moved down. A mapped file stays where it is but gives its
    /// pages back: a mapped file's pages count in the resident set once touched, so without
    /// this the peak RSS of a run would grow with the file. They stay in the page cache.
    #[inline]
    pub(super) fn consume(&mut self, offset: usize) -> usize {
        match self {
            Input::Mapped { map, released } => {
                if offset - *released >= RELEASE_CHUNK {
                    release(map, released, offset);
                }
                0
            }
            Input::Buffered(buffer) if buffer.source.is_some() && offset >= COMPACT_AT => {
                buffer.bytes.drain(..offset);
                buffer.dropped += offset as u64;
                offset
            }
            Input::Buffered(_) => 0,
        }
    }

    /// Puts back what `take_failure` took.
    pub(super) fn keep_failure(&mut self, failure: Option<io::Error>) {
        if let Input::Buffered(buffer) = self {
            buffer.failure = failure;
        }
    }

    /// Why the stream ended before its end, once.
    pub(super) fn take_failure(&mut self) -> Option<io::Error> {
        match self {
            Input::Mapped { .. } => None,
            Input::Buffered(buffer) => buffer.failure.take(),
        }
    }
}

/// Drops the mapped pages before `offset` from this process's memory.
fn release(map: &Mmap, released: &mut usize, offset: usize) {
    const PAGE: usize = 4096;
    let end = offset / PAGE * PAGE;
    if end > *released {
        // SAFETY: the map is a read-only mapping of a file: MADV_DONTNEED only drops our mapping
        // of those pages, and a later access (none is expected: reading is sequential) faults the
        // same file contents in again. No reference into the range is alive: the reader's
        // `next_packet` takes `&mut self`, so the packets it returned are gone.
        #[cfg(unix)]
        let _ = unsafe {
            map.unchecked_advise_range(
                memmap2::UncheckedAdvice::DontNeed,
                *released,
                end - *released,
            )
        };
        *released = end;
    }
}

impl Buffer {
    fn fill_to(&mut self, end: usize) {
        while self.bytes.len() < end {
            let Some(source) = &mut self.source else {
                return;
            };
            let want = (end - self.bytes.len()).max(READ_CHUNK) as u64;
            // `take` + `read_to_end` grows the buffer only as bytes arrive: a record that claims
            // more than the stream holds costs no more memory than the stream.
            match source.as_mut().take(want).read_to_end(&mut self.bytes) {
                Ok(0) => self.source = None,
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    self.failure = Some(error);
                    self.source = None;
                }
            }
        }
    }
}
