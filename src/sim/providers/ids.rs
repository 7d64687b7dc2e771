//! Ids, card numbers and the other random values the mocks make up.

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        static FALLBACK: std::sync::atomic::AtomicU64 =
            std::sync::atomic::AtomicU64::new(0x9e37_79b9_7f4a_7c15);
        let n = FALLBACK.fetch_add(0x9e37_79b9_7f4a_7c15, std::sync::atomic::Ordering::Relaxed);
        return n ^ (n >> 31);
    }
    u64::from_le_bytes(b)
}

pub(super) fn rand_below(n: u64) -> u64 {
    rand_u64() % n.max(1)
}

/// A random (version 4) UUID.
pub(super) fn uuid() -> String {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&rand_u64().to_le_bytes());
    b[8..].copy_from_slice(&rand_u64().to_le_bytes());
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

pub(super) fn random_chars(n: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..n)
        .map(|_| ALPHABET[rand_below(ALPHABET.len() as u64) as usize] as char)
        .collect()
}

pub(super) fn word() -> &'static str {
    const WORDS: &[&str] = &[
        "circle", "gravity", "orbit", "maple", "harbor", "velvet", "pebble", "lantern", "meadow",
        "copper", "willow", "ember", "quartz", "summit", "canyon", "falcon",
    ];
    WORDS[rand_below(WORDS.len() as u64) as usize]
}

/// The Luhn sum of `digits` (rightmost first), doubling those at odd positions when `odd`,
/// else those at even ones.
fn luhn_sum(digits: &[u32], odd: bool) -> u32 {
    digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            if (i % 2 == 1) == odd {
                if x * 2 > 9 {
                    x * 2 - 9
                } else {
                    x * 2
                }
            } else {
                x
            }
        })
        .sum()
}

/// True when `digits` passes the Luhn check (card numbers the mocks issue do).
pub fn luhn_valid(digits: &str) -> bool {
    let d: Vec<u32> = digits.chars().filter_map(|c| c.to_digit(10)).collect();
    if d.len() != digits.len() || d.len() < 2 {
        return false;
    }
    luhn_sum(&d, true).is_multiple_of(10)
}

/// A 16-digit, Luhn-valid, Visa-test-range card number: 4111 and 11 random digits and the check digit.
pub(super) fn pan() -> String {
    let mut d: Vec<u32> = vec![4, 1, 1, 1];
    for _ in 0..11 {
        d.push(rand_below(10) as u32);
    }
    // The check digit: double every second digit from the right of the payload, rightmost first.
    let sum = luhn_sum(&d, false);
    d.push((10 - sum % 10) % 10);
    d.iter()
        .map(|x| char::from_digit(*x, 10).unwrap_or('0'))
        .collect()
}
