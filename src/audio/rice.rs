//! Partitioned Rice coding of prediction residuals (RFC 9639 §9.2.7): the block is cut into
//! 2^order partitions, each coded with its own Rice parameter — or, when raw values would be
//! smaller (noise-like residuals), as an escaped partition of fixed-width signed values.

use super::bits::BitWriter;

/// Highest partition order tried: 256 partitions is already finer than a camera packet
/// (160–1024 samples) gains anything from, and each order costs a pass over the residuals.
const MAX_PARTITION_ORDER: u32 = 8;
/// Rice parameters: 4-bit fields hold 0–14 (15 escapes), 5-bit fields 0–30 (31 escapes).
const MAX_RICE_4: u32 = 14;
const MAX_RICE_5: u32 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Param {
    Rice(u32),
    /// Values written verbatim as signed integers of this many bits (1–31).
    Escape(u32),
}

/// How a block's residuals will be coded, and what that costs.
#[derive(Debug, Clone)]
pub struct Plan {
    partition_order: u32,
    params: Vec<Param>,
    /// 5-bit parameter fields (coding method 1), needed when a parameter exceeds 14.
    wide: bool,
    /// Size of the coded residual section in bits, method and order fields included.
    pub bits: u64,
    block_size: usize,
    predictor_order: usize,
}

fn zigzag(r: i32) -> u32 {
    ((r as u32) << 1) ^ ((r >> 31) as u32)
}

/// Bits a two's complement field needs to hold `r`.
fn signed_width(r: i32) -> u32 {
    let magnitude = (r ^ (r >> 31)) as u32;
    33 - magnitude.leading_zeros()
}

/// The cheapest parameter for one partition and its cost in bits (the parameter field not
/// included).
fn best_param(u: &[u32], r: &[i32]) -> (Param, u64) {
    let n = u.len() as u64;
    if n == 0 {
        return (Param::Rice(0), 0);
    }
    let sum: u64 = u.iter().map(|&v| u64::from(v)).sum();
    let mean = sum / n;
    // The best parameter is near log2 of the mean value; try its neighbours exactly.
    let guess = 64 - mean.leading_zeros();
    let mut best = (Param::Rice(0), u64::MAX);
    for k in guess.saturating_sub(1)..=(guess + 1).min(MAX_RICE_5) {
        let cost = n * u64::from(k + 1) + u.iter().map(|&v| u64::from(v >> k)).sum::<u64>();
        if cost < best.1 {
            best = (Param::Rice(k), cost);
        }
    }
    // Escaped: a 5-bit width then the raw values. A width of 0 (all zero) is legal but some
    // decoders read 0-bit fields badly, and Rice with k = 0 is nearly as small then.
    let width = r.iter().map(|&v| signed_width(v)).max().unwrap_or(1).max(1);
    if width <= 31 {
        let cost = 5 + n * u64::from(width);
        if cost < best.1 {
            best = (Param::Escape(width), cost);
        }
    }
    best
}

/// Plans the coding of `residuals`: the last `block_size - predictor_order` values of a
/// block. Needs `block_size > predictor_order`.
pub fn plan(residuals: &[i32], block_size: usize, predictor_order: usize) -> Plan {
    let u: Vec<u32> = residuals.iter().map(|&r| zigzag(r)).collect();
    let mut best: Option<Plan> = None;
    let mut order = 0;
    while order <= MAX_PARTITION_ORDER
        && block_size.is_multiple_of(1 << order)
        && (block_size >> order) > predictor_order
    {
        let partition = block_size >> order;
        let mut params = Vec::with_capacity(1 << order);
        let mut bits = 2 + 4;
        let mut start = 0;
        for p in 0..(1usize << order) {
            // The first partition is short by the warm-up samples, which are not residuals.
            let len = if p == 0 {
                partition - predictor_order
            } else {
                partition
            };
            let end = (start + len).min(u.len());
            let (param, cost) = best_param(&u[start..end], &residuals[start..end]);
            params.push(param);
            bits += cost;
            start = end;
        }
        let wide = params
            .iter()
            .any(|p| matches!(p, Param::Rice(k) if *k > MAX_RICE_4));
        bits += params.len() as u64 * if wide { 5 } else { 4 };
        if best.as_ref().is_none_or(|b| bits < b.bits) {
            best = Some(Plan {
                partition_order: order,
                params,
                wide,
                bits,
                block_size,
                predictor_order,
            });
        }
        order += 1;
    }
    // Order 0 always qualifies when block_size > predictor_order. Without it (a caller
    // error) the plan costs "infinitely" much, so it is never chosen over VERBATIM.
    best.unwrap_or(Plan {
        partition_order: 0,
        params: Vec::new(),
        wide: false,
        bits: u64::MAX,
        block_size,
        predictor_order,
    })
}

/// Writes the residual section planned by [`plan`] for the same `residuals`.
pub fn write(w: &mut BitWriter, residuals: &[i32], plan: &Plan) {
    let field = if plan.wide { 5 } else { 4 };
    let escape = (1 << field) - 1;
    w.bits(u32::from(plan.wide), 2);
    w.bits(plan.partition_order, 4);
    let partition = plan.block_size >> plan.partition_order;
    let mut start = 0;
    for (p, param) in plan.params.iter().enumerate() {
        let len = if p == 0 {
            partition.saturating_sub(plan.predictor_order)
        } else {
            partition
        };
        let end = (start + len).min(residuals.len());
        let values = &residuals[start..end];
        match *param {
            Param::Rice(k) => {
                w.bits(k, field);
                for &r in values {
                    let v = zigzag(r);
                    w.unary(u64::from(v >> k));
                    w.bits(v, k);
                }
            }
            Param::Escape(width) => {
                w.bits(escape, field);
                w.bits(width, 5);
                for &r in values {
                    w.signed(r, width);
                }
            }
        }
        start = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_and_widths() {
        assert_eq!(
            [0, -1, 1, -2, 2].map(zigzag),
            [0, 1, 2, 3, 4],
            "folds signs as FLAC's Rice codes do"
        );
        assert_eq!(zigzag(i32::MIN), u32::MAX);
        assert_eq!(
            [0, -1, 1, -2, 2, 127, -128, 128].map(signed_width),
            [1, 1, 2, 2, 3, 8, 8, 9]
        );
    }

    #[test]
    fn plan_size_is_what_gets_written() {
        // Small values then a burst of large ones: several partitions with different
        // parameters, and (for the noise) maybe escapes.
        let mut seed = 12345u32;
        let mut residuals: Vec<i32> = (0..1020).map(|i| (i % 7) - 3).collect();
        residuals.extend((0..1024).map(|_| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (seed >> 8) as i32 % 40000
        }));
        let plan = plan(&residuals, 2048, 4);
        assert!(plan.partition_order > 0);
        let mut w = BitWriter::default();
        write(&mut w, &residuals, &plan);
        let written = w.into_bytes().len() as u64;
        assert_eq!(written, plan.bits.div_ceil(8));
    }
}
