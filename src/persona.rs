//! Placeholder personas (a context's `identity`; not the owner's Signal identity, nor the
//! owners of files): a plausible name and an adult date of birth for sites that insist,
//! with the owner's forwarding address. The real name is given later, by phone.

use crate::context::Identity;
use chrono::{Datelike, Duration, Utc};

const FIRST: &[&str] = &[
    "Jordan", "Alex", "Taylor", "Morgan", "Casey", "Riley", "Jamie", "Avery", "Quinn", "Rowan",
    "Cameron", "Drew", "Emerson", "Finley", "Harper", "Hayden", "Kendall", "Logan", "Parker",
    "Reese", "Sawyer", "Skyler", "Blair", "Dana", "Elliot", "Frankie", "Jesse", "Kai", "Lane",
    "Robin",
];
const LAST: &[&str] = &[
    "Ellis",
    "Baker",
    "Carter",
    "Hayes",
    "Morgan",
    "Reed",
    "Foster",
    "Brooks",
    "Sullivan",
    "Price",
    "Bennett",
    "Wood",
    "Barnes",
    "Ross",
    "Henderson",
    "Coleman",
    "Jenkins",
    "Perry",
    "Powell",
    "Long",
    "Patterson",
    "Hughes",
    "Flores",
    "Washington",
    "Butler",
    "Simmons",
    "Bryant",
    "Russell",
    "Griffin",
    "Hale",
];

fn random_below(n: u64) -> u64 {
    let mut b = [0u8; 8];
    // Placeholder details are not secrets; a fixed fallback is harmless if the OS RNG fails.
    if getrandom::fill(&mut b).is_err() {
        return 0;
    }
    u64::from_le_bytes(b) % n
}

/// Makes a placeholder: a random name, a birth date between 25 and 60 years ago, and the
/// configured forwarding address (None when not configured).
pub fn placeholder(forwarding_address: &str) -> Identity {
    let first = FIRST[random_below(FIRST.len() as u64) as usize];
    let last = LAST[random_below(LAST.len() as u64) as usize];
    let today = Utc::now().date_naive();
    let min_age_days = 25 * 366;
    let span_days = 35 * 365;
    let dob = today - Duration::days(min_age_days + random_below(span_days) as i64);
    let address = forwarding_address.trim();
    Identity {
        name: format!("{first} {last}"),
        date_of_birth: format!("{:04}-{:02}-{:02}", dob.year(), dob.month(), dob.day()),
        address: (!address.is_empty()).then(|| address.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_adults_with_the_forwarding_address() {
        for _ in 0..200 {
            let id = placeholder("PO Box 12, 101 Reykjavik");
            let dob = chrono::NaiveDate::parse_from_str(&id.date_of_birth, "%Y-%m-%d").unwrap();
            let age_days = (Utc::now().date_naive() - dob).num_days();
            assert!((25 * 365..=61 * 366).contains(&age_days), "{id:?}");
            assert_eq!(id.address.as_deref(), Some("PO Box 12, 101 Reykjavik"));
            assert!(id.name.contains(' '));
        }
        assert_eq!(placeholder("  ").address, None);
    }
}
