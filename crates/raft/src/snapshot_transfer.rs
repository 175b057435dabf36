//! The wire format of a snapshot transfer (`POST /raft/snapshot`): a header, then the
//! snapshot file in checksummed frames, streamed in bounded memory on both sides.
//!
//! ```text
//! header  len u32 BE (≤ 16 MiB) ‖ {"vote", "meta"} as JSON
//! frame*  len u32 BE (1..=MAX_FRAME) ‖ CRC-32 of the bytes u32 BE ‖ bytes
//! end     len u32 = 0 ‖ total bytes u64 BE ‖ CRC-32 of the whole file u32 BE
//! ```
//!
//! A receiver refuses a frame whose checksum does not match, an oversized length, and an end
//! whose total or file checksum disagrees, so a torn or damaged transfer is discarded (and
//! openraft sends the snapshot again), never installed.

use crate::NodeId;
use bytes::{Buf, Bytes, BytesMut};
use openraft::{BasicNode, SnapshotMeta, Vote};
use serde::{Deserialize, Serialize};

/// Largest frame a receiver accepts.
pub(crate) const MAX_FRAME: usize = 1 << 20;
/// The frames a sender makes: small, so that the work of one frame on either side (reading
/// it, its checksum, the socket write, the receiver's write and check) is a fraction of a
/// millisecond. A paced transfer then interleaves with the clients' requests; with 1 MiB
/// frames each one held a core for milliseconds at a time, and a read that came meanwhile
/// waited, whatever the pace (docs/benchmarks.md, "Catch-up in small frames").
pub(crate) const FRAME: usize = 128 << 10;
const MAX_HEADER: usize = 16 << 20;

/// The snapshot request's JSON header.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SnapshotHeader {
    pub vote: Vote<NodeId>,
    pub meta: SnapshotMeta<NodeId, BasicNode>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum TransferError {
    #[error("malformed snapshot transfer: {0}")]
    Malformed(&'static str),
    #[error("undecodable snapshot header: {0}")]
    Header(#[from] serde_json::Error),
    #[error("snapshot frame {index} failed its checksum")]
    FrameChecksum { index: u64 },
    #[error("the snapshot's total length or checksum does not match what was received")]
    FileChecksum,
}

pub(crate) fn encode_header(header: &SnapshotHeader) -> Result<Bytes, serde_json::Error> {
    let json = serde_json::to_vec(header)?;
    let mut out = BytesMut::with_capacity(4 + json.len());
    out.extend_from_slice(&(json.len() as u32).to_be_bytes());
    out.extend_from_slice(&json);
    Ok(out.freeze())
}

pub(crate) fn encode_frame(bytes: &[u8]) -> Bytes {
    debug_assert!(!bytes.is_empty() && bytes.len() <= MAX_FRAME);
    let mut out = BytesMut::with_capacity(8 + bytes.len());
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(bytes).to_be_bytes());
    out.extend_from_slice(bytes);
    out.freeze()
}

pub(crate) fn encode_end(total: u64, crc: u32) -> Bytes {
    let mut out = BytesMut::with_capacity(16);
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&crc.to_be_bytes());
    out.freeze()
}

/// One decoded piece of a transfer.
#[derive(Debug)]
pub(crate) enum Item {
    Header(Box<SnapshotHeader>),
    Chunk(Bytes),
    End,
}

/// Decodes a transfer from the byte chunks it arrives in, holding at most one frame.
pub(crate) struct Decoder {
    buf: BytesMut,
    header_seen: bool,
    done: bool,
    frames: u64,
    total: u64,
    crc: crc32fast::Hasher,
}

impl Decoder {
    pub(crate) fn new() -> Decoder {
        Decoder {
            buf: BytesMut::new(),
            header_seen: false,
            done: false,
            frames: 0,
            total: 0,
            crc: crc32fast::Hasher::new(),
        }
    }

    pub(crate) fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// True once the end was decoded.
    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    /// The next complete item, `None` when more bytes are needed.
    pub(crate) fn next_item(&mut self) -> Result<Option<Item>, TransferError> {
        if self.done {
            return match self.buf.is_empty() {
                true => Ok(None),
                false => Err(TransferError::Malformed("bytes after the end")),
            };
        }
        let Some(len) = self.peek_u32() else {
            return Ok(None);
        };
        let len = len as usize;
        if !self.header_seen {
            if len > MAX_HEADER {
                return Err(TransferError::Malformed("header too long"));
            }
            if self.buf.len() < 4 + len {
                return Ok(None);
            }
            self.buf.advance(4);
            let json = self.buf.split_to(len);
            self.header_seen = true;
            return Ok(Some(Item::Header(Box::new(serde_json::from_slice(&json)?))));
        }
        if len == 0 {
            if self.buf.len() < 16 {
                return Ok(None);
            }
            self.buf.advance(4);
            let total = self.buf.get_u64();
            let crc = self.buf.get_u32();
            if total != self.total || crc != self.crc.clone().finalize() {
                return Err(TransferError::FileChecksum);
            }
            self.done = true;
            return Ok(Some(Item::End));
        }
        if len > MAX_FRAME {
            return Err(TransferError::Malformed("frame too long"));
        }
        if self.buf.len() < 8 + len {
            return Ok(None);
        }
        self.buf.advance(4);
        let crc = self.buf.get_u32();
        let bytes = self.buf.split_to(len).freeze();
        if crc32fast::hash(&bytes) != crc {
            return Err(TransferError::FrameChecksum { index: self.frames });
        }
        self.frames += 1;
        self.total += bytes.len() as u64;
        self.crc.update(&bytes);
        Ok(Some(Item::Chunk(bytes)))
    }

    fn peek_u32(&self) -> Option<u32> {
        let head: [u8; 4] = self.buf.get(..4)?.try_into().ok()?;
        Some(u32::from_be_bytes(head))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transfer(file: &[u8]) -> Vec<u8> {
        let header = SnapshotHeader {
            vote: Vote::new_committed(3, 1),
            meta: SnapshotMeta::default(),
        };
        let mut out = encode_header(&header).unwrap().to_vec();
        for chunk in file.chunks(7) {
            out.extend_from_slice(&encode_frame(chunk));
        }
        out.extend_from_slice(&encode_end(file.len() as u64, crc32fast::hash(file)));
        out
    }

    /// Feeds `wire` in pieces of `step` bytes; returns the file bytes or the first error.
    fn decode(wire: &[u8], step: usize) -> Result<Vec<u8>, TransferError> {
        let mut decoder = Decoder::new();
        let mut file = Vec::new();
        for piece in wire.chunks(step) {
            decoder.push(piece);
            while let Some(item) = decoder.next_item()? {
                match item {
                    Item::Header(header) => assert_eq!(header.vote, Vote::new_committed(3, 1)),
                    Item::Chunk(bytes) => file.extend_from_slice(&bytes),
                    Item::End => {}
                }
            }
        }
        if !decoder.is_done() {
            return Err(TransferError::Malformed("ended early"));
        }
        Ok(file)
    }

    #[test]
    fn a_transfer_round_trips_however_it_is_cut() {
        let file: Vec<u8> = (0..100u8).collect();
        for step in [1, 3, 8, 1000] {
            assert_eq!(decode(&transfer(&file), step).unwrap(), file, "step {step}");
        }
    }

    #[test]
    fn damaged_torn_or_padded_transfers_are_refused() {
        let file: Vec<u8> = (0..100u8).collect();
        let wire = transfer(&file);
        let header_len = 4 + u32::from_be_bytes(wire[..4].try_into().unwrap()) as usize;
        let mut flipped = wire.clone();
        flipped[header_len + 8 + 2] ^= 1; // a byte inside the first frame
        assert!(matches!(
            decode(&flipped, 5),
            Err(TransferError::FrameChecksum { index: 0 })
        ));
        assert!(decode(&wire[..wire.len() - 1], 5).is_err(), "torn");
        let mut padded = wire.clone();
        padded.push(0);
        assert!(decode(&padded, 5).is_err(), "trailing bytes");
        // A frame dropped whole keeps every frame checksum right; the end catches it.
        let mut dropped = wire[..header_len].to_vec();
        dropped.extend_from_slice(&wire[header_len + 8 + 7..]);
        assert!(matches!(decode(&dropped, 5), Err(TransferError::FileChecksum)));
    }

    /// Decodes `wire` without asserting anything about the header (for arbitrary input).
    fn decode_any(wire: &[u8], step: usize) -> Result<Vec<u8>, TransferError> {
        let mut decoder = Decoder::new();
        let mut file = Vec::new();
        for piece in wire.chunks(step.max(1)) {
            decoder.push(piece);
            while let Some(item) = decoder.next_item()? {
                if let Item::Chunk(bytes) = item {
                    file.extend_from_slice(&bytes);
                }
            }
        }
        if decoder.is_done() {
            Ok(file)
        } else {
            Err(TransferError::Malformed("ended early"))
        }
    }

    proptest::proptest! {
        /// Any file survives any cutting of its transfer.
        #[test]
        fn any_file_round_trips(file in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2000), step in 1usize..64) {
            proptest::prop_assert_eq!(decode(&transfer(&file), step).unwrap(), file);
        }

        /// Any single changed byte of a transfer is caught: the decoder refuses it, or (for a
        /// byte of the header, which says what the snapshot is) yields the file unchanged.
        #[test]
        fn any_damaged_byte_is_refused(file in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..500), at in proptest::prelude::any::<proptest::sample::Index>(), flip in 1u8..=255) {
            let mut wire = transfer(&file);
            let header_len = 4 + u32::from_be_bytes(wire[..4].try_into().unwrap()) as usize;
            let i = at.index(wire.len());
            wire[i] ^= flip;
            if let Ok(decoded) = decode_any(&wire, 13) {
                proptest::prop_assert!(i < header_len, "a damaged byte at {} of {} was accepted", i, wire.len());
                proptest::prop_assert_eq!(decoded, file);
            }
        }

        /// Arbitrary bytes from a peer: an error or an end, never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(wire in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4096), step in 1usize..512) {
            let _ = decode_any(&wire, step);
        }
    }
}
