//! Whether a card transaction's merchant is the site the card was made for.
//!
//! Card networks give a merchant descriptor (`merchant.descriptor` at Privacy.com and Lithic:
//! "NETFLIX.COM", "NOTION LABS INC", "SQ *COFFEE"), not a domain. It is compared word by word,
//! case-insensitively, with the site's name (the first label of its registrable domain:
//! `notion` for `www.notion.so`, also written apart or run together when it has a hyphen) and
//! with the descriptors the owner accepted for the context (`enroll` `merchants`). Never by
//! substring: `NOTIONAL PAYMENTS` is not `notion`.

use super::matching::registrable;

/// The descriptor's words: runs of ASCII letters and digits, uppercase.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_uppercase)
        .collect()
}

/// True when `needle` occurs in `hay` as consecutive words.
fn has_run(hay: &[String], needle: &[String]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// True when `descriptor` names the site on `site_domain` or one of `accepted`.
pub fn is_site(descriptor: &str, site_domain: &str, accepted: &[String]) -> bool {
    let hay = words(descriptor);
    if accepted.iter().any(|a| has_run(&hay, &words(a))) {
        return true;
    }
    let Some(domain) = registrable(site_domain) else {
        return false;
    };
    let label = domain.split('.').next().unwrap_or_default();
    let parts = words(label);
    let joined = parts.concat();
    has_run(&hay, &parts) || hay.contains(&joined) || hay.windows(2).any(|w| w.concat() == joined)
}

/// Normalises an accepted descriptor the owner gives: its words, one space apart. None when
/// it has no letter or digit.
pub fn normalise(descriptor: &str) -> Option<String> {
    let w = words(descriptor);
    (!w.is_empty()).then(|| w.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_site_by_name_never_by_substring() {
        for d in [
            "NOTION.SO",
            "NOTION LABS INC",
            "SQ *NOTION",
            "notion so 415-555",
        ] {
            assert!(is_site(d, "www.notion.so", &[]), "{d}");
        }
        for d in ["SHADYSHOP LLC", "NOTIONAL PAYMENTS", "N0TION", "NOTIONSO"] {
            assert!(!is_site(d, "notion.so", &[]), "{d}");
        }
        assert!(is_site("MY SHOP ONLINE", "my-shop.co.uk", &[]));
        assert!(is_site("MYSHOP*ORDER", "my-shop.co.uk", &[]));
        assert!(!is_site("", "notion.so", &[]));
    }

    #[test]
    fn accepted_descriptors_are_word_runs() {
        let accepted = vec!["American Airlines".to_string()];
        assert!(is_site("AMERICAN AIRLINES 0012", "aa.com", &accepted));
        assert!(!is_site("AMERICAN EXPRESS", "aa.com", &accepted));
        assert_eq!(
            normalise(" american  airlines! ").as_deref(),
            Some("AMERICAN AIRLINES")
        );
        assert_eq!(normalise("***"), None);
    }
}
