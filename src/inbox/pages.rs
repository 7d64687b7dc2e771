//! A long text cut into pages that each fit one Signal message, at line breaks where it can.

/// `text` cut into pages of at most `max` bytes each, at a line break when one falls in the
/// second half of a page, else between two characters. Always at least one page.
pub fn split(text: &str, max: usize) -> Vec<String> {
    let max = max.max(8);
    let mut pages = Vec::new();
    let mut rest = text;
    while rest.len() > max {
        let mut cut = max;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let head = &rest[..cut];
        // A line break in the second half of the page, else a space there, else anywhere.
        let at = match (head.rfind('\n'), head.rfind(' ')) {
            (Some(nl), _) if nl >= max / 2 => nl + 1,
            (_, Some(sp)) if sp >= max / 2 => sp + 1,
            _ => cut,
        };
        pages.push(rest[..at].trim_end_matches('\n').to_string());
        rest = &rest[at..];
    }
    if !rest.is_empty() || pages.is_empty() {
        pages.push(rest.to_string());
    }
    pages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_fit_and_lose_nothing() {
        let text = format!(
            "{}\n{}\né{}",
            "a".repeat(30),
            "b".repeat(50),
            "c".repeat(70)
        );
        let pages = split(&text, 40);
        assert!(pages.iter().all(|p| p.len() <= 40), "{pages:?}");
        let joined: String = pages.concat();
        assert_eq!(joined.replace('\n', ""), text.replace('\n', ""));
        assert_eq!(pages[0], "a".repeat(30));
        assert_eq!(split("", 40), vec![String::new()]);
        assert_eq!(split("ééééé", 8).concat(), "ééééé");
    }
}
