//! The preconditions of a write (`If-Match`, `If-None-Match`, `Overwrite: F`): parsed from a
//! client's headers ([`Precondition::from_http`], outside bytes fuzzed in
//! `fuzz/fuzz_targets/request_headers.rs`) and checked against the validator of the file that is
//! there ([`Precondition::holds`]), by every file system that carries writes out.

/// What must hold of the current file for a write to go ahead, checked when the write begins
/// (so that a refused one does not send its whole body first) and again when it is committed
/// (so that nothing written meanwhile by another request of ours is lost).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Precondition {
    /// Whatever is there, or nothing.
    #[default]
    None,
    /// Nothing may be there (`If-None-Match: *`; MOVE and COPY with `Overwrite: F`).
    Absent,
    /// A file must be there (`If-Match: *`).
    Present,
    /// A file must be there whose validator is one of these (`If-Match: "…"`, strong
    /// comparison: a weak tag `W/"…"` never matches).
    Matches(Vec<String>),
    /// Nothing may be there with one of these validators (`If-None-Match: "…"`).
    NoneMatch(Vec<String>),
}

impl Precondition {
    /// Whether it holds when the current file has validator `current` (`None`: no file).
    pub fn holds(&self, current: Option<&str>) -> bool {
        match self {
            Precondition::None => true,
            Precondition::Absent => current.is_none(),
            Precondition::Present => current.is_some(),
            Precondition::Matches(tags) => current.is_some_and(|c| tags.iter().any(|t| t == c)),
            Precondition::NoneMatch(tags) => {
                !current.is_some_and(|c| tags.iter().any(|t| t.trim_start_matches("W/") == c))
            }
        }
    }

    /// The precondition of `If-Match` and `If-None-Match` request headers (their values; either
    /// may be absent). `If-Match` wins when both are sent, as RFC 9110 evaluates it first; a
    /// value that lists no tag is taken as no header.
    pub fn from_http(if_match: Option<&str>, if_none_match: Option<&str>) -> Precondition {
        let tags = |v: &str| -> Option<Vec<String>> {
            let tags: Vec<String> = v.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect();
            (!tags.is_empty()).then_some(tags)
        };
        if let Some(tags) = if_match.and_then(tags) {
            return if tags.iter().any(|t| t == "*") { Precondition::Present } else { Precondition::Matches(tags) };
        }
        if let Some(tags) = if_none_match.and_then(tags) {
            return if tags.iter().any(|t| t == "*") { Precondition::Absent } else { Precondition::NoneMatch(tags) };
        }
        Precondition::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preconditions() {
        let tag = "\"5f.0000000a-3\"";
        let other = "\"5f.0000000b-3\"";
        let cases: [(Precondition, Option<&str>, bool); 12] = [
            (Precondition::None, None, true),
            (Precondition::None, Some(tag), true),
            (Precondition::Absent, None, true),
            (Precondition::Absent, Some(tag), false),
            (Precondition::Present, None, false),
            (Precondition::Present, Some(tag), true),
            (Precondition::Matches(vec![other.into(), tag.into()]), Some(tag), true),
            (Precondition::Matches(vec![other.into()]), Some(tag), false),
            (Precondition::Matches(vec![tag.into()]), None, false),
            (Precondition::Matches(vec![format!("W/{tag}")]), Some(tag), false),
            (Precondition::NoneMatch(vec![format!("W/{tag}")]), Some(tag), false),
            (Precondition::NoneMatch(vec![other.into()]), Some(tag), true),
        ];
        for (pre, current, want) in cases {
            assert_eq!(pre.holds(current), want, "{pre:?} with {current:?}");
        }
    }

    #[test]
    fn preconditions_from_http_headers() {
        assert_eq!(Precondition::from_http(None, None), Precondition::None);
        assert_eq!(Precondition::from_http(None, Some("*")), Precondition::Absent);
        assert_eq!(Precondition::from_http(Some(" * "), None), Precondition::Present);
        assert_eq!(
            Precondition::from_http(Some("\"a\", \"b\""), Some("*")),
            Precondition::Matches(vec!["\"a\"".into(), "\"b\"".into()])
        );
        assert_eq!(Precondition::from_http(None, Some("\"a\"")), Precondition::NoneMatch(vec!["\"a\"".into()]));
        assert_eq!(Precondition::from_http(Some(" , "), None), Precondition::None);
    }
}
