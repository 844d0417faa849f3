//! `--auth` rules and `Authorization: Basic` values, on arbitrary input. Nothing may panic; an
//! accepted rule grants valid paths, once each, with exactly the access it says at each of them;
//! a refused one points at a column inside the rule; a password never prints; accepted Basic
//! credentials go there and back.
//!
//! No hash is checked here (a bcrypt cost of 31 would take days): only clear-text logins.

#![no_main]

use dftp_core::access::Subject;
use dftp_core::{Credentials, DfsPath, Password, Rule, Rules, Secret, Who};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(credentials) = Credentials::from_basic(data) {
        assert!(!credentials.user.is_empty());
        assert_eq!(Credentials::from_basic(credentials.to_basic().as_bytes()).as_ref(), Ok(&credentials));
    }
    let Ok(text) = std::str::from_utf8(data) else { return };
    let rule = match Rule::parse(text) {
        Ok(rule) => rule,
        Err(e) => {
            assert!(e.column >= 1 && e.column <= text.chars().count() + 1, "{e} in {} chars", text.chars().count());
            assert!(!e.reason.is_empty());
            return;
        }
    };
    assert!(!rule.grants.is_empty());
    for (i, g) in rule.grants.iter().enumerate() {
        assert_eq!(DfsPath::parse_request(g.path.as_str()).as_ref(), Ok(&g.path));
        assert!(rule.grants[..i].iter().all(|h| h.path != g.path), "{} twice", g.path);
    }
    let rules = Rules::new([rule.clone()]).expect("one rule is a valid rule set");
    let who = match &rule.subject {
        Subject::Anonymous => Who::anonymous(),
        Subject::User { name, password } => {
            assert!(!name.is_empty() && !name.contains(':'));
            let shown = format!("{password:?}");
            assert!(shown.ends_with("(***)"), "{shown}");
            // What the rule shows does not depend on its password.
            let other = Secret::new("other");
            let other = match password {
                Password::Clear(_) => Password::Clear(other),
                Password::Bcrypt(_) => Password::Bcrypt(other),
                Password::Sha512Crypt(_) => Password::Sha512Crypt(other),
            };
            let other = Subject::User { name: name.clone(), password: other };
            let masked = Rule { subject: other, grants: rule.grants.clone() };
            assert_eq!(format!("{rule:?}"), format!("{masked:?}"));
            let Password::Clear(secret) = password else { return };
            rules.login(name, secret).expect("a clear password logs its user in")
        }
    };
    for g in &rule.grants {
        assert_eq!(rules.access(&who, &g.path), Some(g.access), "at {}", g.path);
    }
});
