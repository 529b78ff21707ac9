//! Integer columns stored as deltas (a load's `record`, the position of each row in its file),
//! written by hand in the DELTA_BINARY_PACKED encoding. The positions of a load count up by one
//! with a gap at each quarantined record, so nearly every block of deltas packs at a bit width
//! of 0: the block's minimum delta and four zero widths, and no bits. Parquet's own encoder
//! takes the same encoding but puts each value through its bit writer, zero bits or not.
//!
//! (Ids stored as DELTA_BYTE_ARRAY were written so too, once: no cheaper than parquet's
//! encoder, whose cost is finding each id's shared prefix and its minimum and maximum, and a
//! row group's page of 1.5 MB cost a mapping and its page faults each time.)

use datafusion::arrow::array::{Array, Int64Array};
use datafusion::parquet::basic::{Compression, Encoding};
use datafusion::parquet::column::writer::ColumnCloseResult;
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::statistics::{Statistics, ValueStatistics};
use datafusion::parquet::schema::types::ColumnDescPtr;

use bytes::Bytes;

use super::coded::Full;
use super::{page_chunk, uleb128};

/// Deltas per block, and miniblocks per block (each of 64 deltas, as parquet's own encoder
/// writes 64-bit integers).
const BLOCK: usize = 256;
const MINIBLOCKS: usize = 4;
const MINIBLOCK: usize = BLOCK / MINIBLOCKS;

/// A column's row group in progress: its values.
#[derive(Default)]
pub(super) struct Deltas {
    values: Vec<i64>,
}

impl Deltas {
    /// Takes a batch's column. A column with nulls is refused (it is left to parquet's encoder).
    pub(super) fn push(&mut self, a: &Int64Array) -> Result<(), Full> {
        if a.null_count() > 0 {
            return Err(Full);
        }
        self.values.extend_from_slice(a.values());
        Ok(())
    }

    /// The row group's rows so far (when the column is handed to parquet's encoder).
    pub(super) fn rows_as_array(&self) -> Int64Array {
        Int64Array::from(self.values.clone())
    }

    pub(super) fn rows(&self) -> usize {
        self.values.len()
    }

    /// The row group's chunk (one data page), and the column made ready for the next.
    pub(super) fn chunk(
        &mut self,
        descr: ColumnDescPtr,
        compression: Compression,
    ) -> Result<(Bytes, ColumnCloseResult), ParquetError> {
        if descr.max_def_level() > 0 || descr.max_rep_level() > 0 {
            return Err(ParquetError::General(format!(
                "column {} is optional or repeated; deltas are written for required ones",
                descr.name()
            )));
        }
        let rows = u32::try_from(self.values.len())
            .ok()
            .filter(|n| *n < 1 << 30)
            .ok_or_else(|| ParquetError::General("a row group too long".into()))?;
        let mut body = Vec::new();
        delta_binary_packed(&self.values, &mut body);
        let min = self.values.iter().min().copied();
        let max = self.values.iter().max().copied();
        let stats = Statistics::Int64(
            ValueStatistics::new(min, max, None, Some(0), false)
                .with_min_is_exact(min.is_some())
                .with_max_is_exact(max.is_some())
                // As parquet's writer does for a signed sort order: the old fields too.
                .with_backwards_compatible_min_max(true),
        );
        let chunk = page_chunk(
            descr,
            None,
            (body, Encoding::DELTA_BINARY_PACKED),
            rows,
            compression,
            stats,
            None,
        )?;
        self.values.clear();
        Ok(chunk)
    }
}

/// Appends `v` zigzag-encoded as an unsigned LEB128 varint.
fn zigzag(out: &mut Vec<u8>, v: i64) {
    uleb128(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// Appends `values` in the DELTA_BINARY_PACKED encoding: the header (block size, miniblocks per
/// block, the count of values, the first value), then per block of up to [`BLOCK`] deltas its
/// minimum delta, each miniblock's bit width, and each miniblock's deltas less the minimum,
/// packed from the least significant bit at that width (the last miniblock padded to its full
/// length; the widths of miniblocks past the values are 0, and their bodies absent). Deltas
/// wrap, as the encoding's readers expect.
pub(super) fn delta_binary_packed(values: &[i64], out: &mut Vec<u8>) {
    uleb128(out, BLOCK as u64);
    uleb128(out, MINIBLOCKS as u64);
    uleb128(out, values.len() as u64);
    let Some((&first, rest)) = values.split_first() else {
        zigzag(out, 0);
        return;
    };
    zigzag(out, first);
    let mut previous = first;
    let mut deltas = [0i64; BLOCK];
    for block in rest.chunks(BLOCK) {
        let deltas = &mut deltas[..block.len()];
        for (d, v) in deltas.iter_mut().zip(block) {
            *d = v.wrapping_sub(previous);
            previous = *v;
        }
        let min = deltas.iter().copied().min().unwrap_or(0);
        zigzag(out, min);
        let widths = out.len();
        out.extend_from_slice(&[0; MINIBLOCKS]);
        for (m, mini) in deltas.chunks(MINIBLOCK).enumerate() {
            let top = mini
                .iter()
                .map(|d| d.wrapping_sub(min) as u64)
                .max()
                .unwrap_or(0);
            let width = u64::BITS - top.leading_zeros();
            out[widths + m] = width as u8;
            if width == 0 {
                continue;
            }
            let (mut acc, mut bits) = (0u128, 0u32);
            let padding = MINIBLOCK - mini.len();
            let packed = mini.iter().map(|d| d.wrapping_sub(min) as u64);
            for v in packed.chain(std::iter::repeat_n(0, padding)) {
                acc |= u128::from(v) << bits;
                bits += width;
                while bits >= 8 {
                    out.push(acc as u8);
                    acc >>= 8;
                    bits -= 8;
                }
            }
            debug_assert_eq!(bits, 0, "64 values of any width fill whole bytes");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Positions counting up by one pack at width 0: per block, the minimum delta and four
    /// zero widths.
    #[test]
    fn consecutive_positions_take_a_few_bytes_a_block() {
        let values: Vec<i64> = (2..=1_025).collect();
        let mut out = Vec::new();
        delta_binary_packed(&values, &mut out);
        // Header: 256 (2 bytes), 4, 1,024 (2 bytes), zigzag(2) = 4; then 4 blocks (1,023
        // deltas) of zigzag(1) = 2 and four zero widths.
        let mut expected = vec![0x80, 0x02, 4, 0x80, 0x08, 4];
        for _ in 0..4 {
            expected.extend([2, 0, 0, 0, 0]);
        }
        assert_eq!(out, expected);
    }

    /// A gap gives its miniblock a width; the others stay at 0.
    #[test]
    fn a_gap_widens_its_miniblock_only() {
        let mut values: Vec<i64> = (1..=200).collect();
        values[100..].iter_mut().for_each(|v| *v += 5);
        let mut out = Vec::new();
        delta_binary_packed(&values, &mut out);
        // Header: 256, 4, 200, zigzag(1) = 2; one block: min 1, widths 0, 3 (the delta of 6
        // less 1 is 5), 0, 0; then 64 values of 3 bits (24 bytes), one of them 5.
        let header = [0x80, 0x02, 4, 0xc8, 0x01, 2, 2, 0, 3, 0, 0];
        assert_eq!(out[..header.len()], header);
        let body = &out[header.len()..];
        assert_eq!(body.len(), 24);
        // The gap is the delta into value 100, the 99th delta: the 35th of miniblock 1.
        let bit = 35 * 3;
        let v = (u32::from(body[bit / 8]) | u32::from(body[bit / 8 + 1]) << 8) >> (bit % 8) & 7;
        assert_eq!(v, 5);
        assert_eq!(body.iter().map(|b| b.count_ones()).sum::<u32>(), 2);
    }
}
