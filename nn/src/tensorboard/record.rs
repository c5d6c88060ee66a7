//! TFRecord framing, the container of event files: each record is its length (`u64`,
//! little-endian), the masked CRC-32C of those 8 bytes, the payload, and the masked
//! CRC-32C of the payload (both `u32`, little-endian).

use std::io::{self, Write};

use crc::{CRC_32_ISCSI, Crc};

/// CRC-32C (Castagnoli), the checksum of TFRecord files.
const CRC32C: Crc<u32> = Crc::<u32>::new(&CRC_32_ISCSI);

/// The CRC-32C of `bytes`, masked as TFRecord stores it (rotated right by 15 bits plus a
/// constant, so that a CRC of data holding CRCs stays well distributed).
pub(crate) fn masked_crc32c(bytes: &[u8]) -> u32 {
    let crc = CRC32C.checksum(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Writes `payload` to `out` as one TFRecord.
pub(crate) fn write_record(out: &mut impl Write, payload: &[u8]) -> io::Result<()> {
    let length = (payload.len() as u64).to_le_bytes();
    out.write_all(&length)?;
    out.write_all(&masked_crc32c(&length).to_le_bytes())?;
    out.write_all(payload)?;
    out.write_all(&masked_crc32c(payload).to_le_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_of_the_standard_check_string() {
        // The check value of CRC-32C (iSCSI) in the catalogue of parametrised CRCs.
        assert_eq!(CRC32C.checksum(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn a_record_is_framed_by_its_length_and_two_crcs() {
        let mut out = Vec::new();
        write_record(&mut out, b"abc").unwrap();
        assert_eq!(out.len(), 8 + 4 + 3 + 4);
        assert_eq!(out[..8], 3u64.to_le_bytes());
        assert_eq!(out[8..12], masked_crc32c(&out[..8]).to_le_bytes());
        assert_eq!(&out[12..15], b"abc");
        assert_eq!(out[15..], masked_crc32c(b"abc").to_le_bytes());
    }
}
