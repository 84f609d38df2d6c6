//! A big-endian bit writer and the two CRCs a FLAC frame carries (RFC 9639 §9.1.8, §9.3).

/// Writes bit fields most significant bit first, as every FLAC field is laid out.
#[derive(Debug, Default)]
pub struct BitWriter {
    bytes: Vec<u8>,
    /// Bits not yet written out, right-aligned; fewer than 8 between calls.
    acc: u64,
    pending: u32,
}

impl BitWriter {
    pub fn with_capacity(bytes: usize) -> Self {
        BitWriter {
            bytes: Vec::with_capacity(bytes),
            acc: 0,
            pending: 0,
        }
    }

    /// Writes the low `bits` bits of `value` (`bits` ≤ 32).
    pub fn bits(&mut self, value: u32, bits: u32) {
        debug_assert!(bits <= 32);
        if bits == 0 {
            return;
        }
        let mask = if bits == 32 {
            u32::MAX
        } else {
            (1 << bits) - 1
        };
        // At most 7 pending bits plus 32 new ones: fits the 64-bit accumulator.
        self.acc = (self.acc << bits) | u64::from(value & mask);
        self.pending += bits;
        while self.pending >= 8 {
            self.pending -= 8;
            self.bytes.push((self.acc >> self.pending) as u8);
        }
        self.acc &= (1 << self.pending) - 1;
    }

    /// A two's complement value in `bits` bits.
    pub fn signed(&mut self, value: i32, bits: u32) {
        self.bits(value as u32, bits);
    }

    /// `zeros` zero bits then a one: the unary quotient of a Rice code.
    pub fn unary(&mut self, mut zeros: u64) {
        while zeros >= 32 {
            self.bits(0, 32);
            zeros -= 32;
        }
        // zeros < 32, so zeros + 1 ≤ 32.
        self.bits(1, zeros as u32 + 1);
    }

    pub fn byte(&mut self, b: u8) {
        self.bits(u32::from(b), 8);
    }

    /// Pads with zero bits to the next byte boundary.
    pub fn align(&mut self) {
        if self.pending > 0 {
            self.bits(0, 8 - self.pending);
        }
    }

    /// The bytes written so far; only whole bytes (call [`BitWriter::align`] first).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(mut self) -> Vec<u8> {
        self.align();
        self.bytes
    }
}

const fn crc_table(poly: u16, width: u32) -> [u16; 256] {
    let top = 1u32 << (width - 1);
    let mask = ((1u32 << width) - 1) as u16;
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = (i as u32) << (width - 8);
        let mut bit = 0;
        while bit < 8 {
            c = if c & top != 0 {
                (c << 1) ^ poly as u32
            } else {
                c << 1
            };
            bit += 1;
        }
        table[i] = c as u16 & mask;
        i += 1;
    }
    table
}

/// CRC-8, polynomial x^8 + x^2 + x + 1, initial value 0 (the frame header's).
const CRC8: [u16; 256] = crc_table(0x07, 8);
/// CRC-16, polynomial x^16 + x^15 + x^2 + 1, initial value 0 (the whole frame's).
const CRC16: [u16; 256] = crc_table(0x8005, 16);

pub fn crc8(data: &[u8]) -> u8 {
    data.iter()
        .fold(0u8, |c, &b| CRC8[usize::from(c ^ b)] as u8)
}

pub fn crc16(data: &[u8]) -> u16 {
    data.iter().fold(0u16, |c, &b| {
        (c << 8) ^ CRC16[usize::from((c >> 8) as u8 ^ b)]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_pack_msb_first() {
        let mut w = BitWriter::default();
        w.bits(0b101, 3);
        w.bits(0x1f, 5);
        w.signed(-2, 4);
        w.unary(3);
        w.unary(40);
        let b = w.into_bytes();
        // 101 11111 | 1110 0001 | 40 zeros | 1 then padding.
        assert_eq!(b[0], 0b1011_1111);
        assert_eq!(b[1], 0b1110_0001);
        assert_eq!(&b[2..7], &[0; 5]);
        assert_eq!(b[7], 0b1000_0000);
        assert_eq!(b.len(), 8);
    }

    #[test]
    fn crcs_match_their_check_values() {
        // The standard check input "123456789": CRC-8 (poly 0x07) = 0xF4, CRC-16/UMTS
        // (poly 0x8005, init 0, unreflected) = 0xFEE8.
        assert_eq!(crc8(b"123456789"), 0xF4);
        assert_eq!(crc16(b"123456789"), 0xFEE8);
    }
}
