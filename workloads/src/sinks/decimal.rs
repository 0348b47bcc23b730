//! `f64` as text exactly as `Display` writes it (the shortest decimal that reads back as the
//! same number, never in exponent notation), a few times faster: the training table's CSV has
//! millions of them, and their formatting dominated writing it.
//!
//! `ryu` finds the shortest digits, as `Display` does: the shortest string that round-trips, the
//! closest one to the exact value when several are as short. Only when the value lies exactly
//! halfway between two such strings do they choose differently (`ryu` the even last digit), and
//! those values, detected exactly, are written by `Display` itself. The layout differs too
//! (`ryu` writes `1e-7` and `1.0`, `Display` `0.0000001` and `1`) and is redone here. The tests
//! compare both over hundreds of thousands of values of every magnitude.

/// Appends `value` as `Display` writes it to `out`.
pub fn push_f64(out: &mut Vec<u8>, value: f64) {
    if !value.is_finite() {
        out.extend_from_slice(if value.is_nan() {
            b"NaN"
        } else if value > 0.0 {
            b"inf"
        } else {
            b"-inf"
        });
        return;
    }
    if value == 0.0 {
        out.extend_from_slice(if value.is_sign_negative() { b"-0" } else { b"0" });
        return;
    }
    let mut buffer = ryu::Buffer::new();
    let text = buffer.format_finite(value).as_bytes();
    // One pass over `ryu`'s text (`-`, digits, an optional `.`, an optional `e` and exponent):
    // the digits, where the decimal point goes among them, the sign.
    let negative = text[0] == b'-';
    let mut digits = [0u8; 24];
    let mut n = 0;
    let mut point = None;
    let mut exponent = 0i32;
    let mut i = usize::from(negative);
    while i < text.len() {
        match text[i] {
            b'.' => point = Some(n as i32),
            b'e' => {
                let (sign, from) = if text.get(i + 1) == Some(&b'-') { (-1, i + 2) } else { (1, i + 1) };
                exponent = sign * text[from..].iter().fold(0i32, |e, &d| e * 10 + i32::from(d - b'0'));
                break;
            }
            d => {
                if n < digits.len() {
                    digits[n] = d;
                    n += 1;
                }
            }
        }
        i += 1;
    }
    let mut point = point.unwrap_or(n as i32) + exponent;
    let mut start = 0;
    while start + 1 < n && digits[start] == b'0' {
        start += 1;
        point -= 1;
    }
    while n > start + 1 && digits[n - 1] == b'0' {
        n -= 1;
    }
    let digits = &digits[start..n];
    // Fewer than 16 digits of a normal number are never halfway (see `halfway`).
    let may_be_halfway = digits.len() >= 16 || value.abs() < f64::MIN_POSITIVE;
    if may_be_halfway && halfway(value, digits, point - digits.len() as i32) {
        use std::io::Write as _;
        // Into a Vec, writing cannot fail.
        let _ = write!(out, "{value}");
        return;
    }
    if negative {
        out.push(b'-');
    }
    let len = digits.len() as i32;
    if point <= 0 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', (-point) as usize));
        out.extend_from_slice(digits);
    } else if point >= len {
        out.extend_from_slice(digits);
        out.extend(std::iter::repeat_n(b'0', (point - len) as usize));
    } else {
        let (before, after) = digits.split_at(point as usize);
        out.extend_from_slice(before);
        out.push(b'.');
        out.extend_from_slice(after);
    }
}

/// Whether `value` (finite, not 0) is exactly halfway between the decimal `digits` × 10^`unit`
/// and a neighbour of it with as many digits: `value` = (2 × digits ± 1) / 2 × 10^`unit`.
///
/// Both neighbours must read back as `value`, so 10^`unit` is at most the spacing of doubles
/// there, 2^-52 × `value` for a normal number: `digits` has 16 or more of them.
fn halfway(value: f64, digits: &[u8], unit: i32) -> bool {
    let bits = value.abs().to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1 << 52) - 1);
    // value = m × 2^e exactly.
    let (m, e) = if biased == 0 { (fraction, -1074) } else { (fraction | (1 << 52), biased - 1075) };
    // 2 × value = m × 2^(e+1) must equal s × 10^unit = s × 5^unit × 2^unit for an odd s = 2d ± 1:
    // the powers of two first (almost always different), then the odd parts.
    let twos = m.trailing_zeros() as i32 + e + 1;
    if twos != unit {
        return false;
    }
    let odd = u128::from(m >> m.trailing_zeros());
    let Some(pow5) = 5u128.checked_pow(unit.unsigned_abs()) else { return false };
    let d = digits.iter().fold(0u128, |d, &c| d * 10 + u128::from(c - b'0'));
    // unit >= 0: odd = s × 5^unit; unit < 0: odd × 5^-unit = s.
    let matches = |s: u128| if unit >= 0 { s.checked_mul(pow5) == Some(odd) } else { odd.checked_mul(pow5) == Some(s) };
    matches(2 * d + 1) || (d > 0 && matches(2 * d - 1))
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;

    fn same_as_display(value: f64) {
        let mut text = Vec::new();
        push_f64(&mut text, value);
        assert_eq!(String::from_utf8(text).unwrap(), format!("{value}"), "bits {:#x}", value.to_bits());
    }

    #[test]
    fn special_and_boundary_values_read_as_display_writes_them() {
        for value in [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.1,
            0.3,
            1e-7,
            1e21,
            1e22,
            123456789.0,
            0.000123,
            5e-324,
            -5e-324,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::MIN,
            f64::EPSILON,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            91234.25,
            2.5e-5,
            1e15,
            1e16,
            1e17,
            9007199254740993.0,
            // Exactly halfway between two shortest strings: `ryu` alone writes ...033.2.
            f64::from_bits(0x4310_e722_2f68_7ea5),
        ] {
            same_as_display(value);
        }
    }

    #[test]
    fn random_bit_patterns_read_as_display_writes_them() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..200_000 {
            same_as_display(f64::from_bits(rng.random()));
        }
    }

    #[test]
    fn values_halfway_between_two_shortest_strings_read_as_display_writes_them() {
        // Large values with quarter fractions, and small dyadic fractions: where ties live.
        for i in 0..50_000u64 {
            for base in [1u64 << 49, 1 << 50, 1 << 51, 1 << 52, 1 << 60] {
                same_as_display((base + i * 7919) as f64 + 0.25);
                same_as_display((base + i * 7919) as f64 + 0.75);
            }
            same_as_display(i as f64 / 1024.0 + 1e-3);
        }
    }

    #[test]
    fn feature_like_values_read_as_display_writes_them() {
        // Prices, returns, spreads and rates: the magnitudes of the table.
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for _ in 0..200_000 {
            let magnitude = 10f64.powi(rng.random_range(-12..12));
            let value = rng.random_range(-1.0..1.0) * magnitude;
            same_as_display(value);
            same_as_display((value * 100.0).round() / 100.0);
        }
    }
}
