//! Accounts and per-path permissions (`dftp_core::access`): the rule grammar, with its errors
//! and their columns; passwords in clear text, bcrypt and SHA-512 crypt (and that none of them
//! ever prints); the decision (allow, 401, 403) and what listings may show; HTTP Basic
//! credentials. The longest-prefix rule is checked against a naive model on random rule sets.

use std::collections::HashMap;

use dftp_core::access::{Access, BasicError, Grant, LoginError, Subject, ANONYMOUS};
use dftp_core::{Credentials, Decision, DfsPath, Need, Password, Rule, Rules, Secret, Visibility, Who};
use proptest::prelude::*;

fn p(s: &str) -> DfsPath {
    DfsPath::parse_request(s).unwrap()
}

fn rule(s: &str) -> Rule {
    Rule::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn rules(list: &[&str]) -> Rules {
    Rules::new(list.iter().map(|s| rule(s))).unwrap()
}

fn grants(r: &Rule) -> Vec<(String, Access)> {
    r.grants.iter().map(|g| (g.path.to_string(), g.access)).collect()
}

fn login(rules: &Rules, user: &str, password: &str) -> Who {
    rules.login(user, &Secret::new(password)).unwrap_or_else(|e| panic!("{user}: {e}"))
}

// ---- grammar -------------------------------------------------------------------------------------

#[test]
fn rules_as_dufs_writes_them() {
    use Access::*;
    let r = rule("admin:s3cret@/:rw");
    assert_eq!(grants(&r), [("/".into(), ReadWrite)]);
    match &r.subject {
        Subject::User { name, password } => {
            assert_eq!(name, "admin");
            assert!(matches!(password, Password::Clear(s) if s.expose() == "s3cret"));
        }
        other => panic!("{other:?}"),
    }
    let r = rule("@/pub,/drop box/in:rw,/docs/");
    assert_eq!(r.subject, Subject::Anonymous);
    assert_eq!(grants(&r), [("/pub".into(), ReadOnly), ("/drop box/in".into(), ReadWrite), ("/docs".into(), ReadOnly)]);
    assert_eq!(grants(&rule("u:p@/a:ro")), [("/a".into(), ReadOnly)]);
    // A password may hold `@` and `:`; it ends at the first `@/`. A user name may hold `@`.
    let r = rule("bob@example.org:p@ss:w@rd@/home/bob:rw");
    match &r.subject {
        Subject::User { name, password: Password::Clear(s) } => {
            assert_eq!((name.as_str(), s.expose()), ("bob@example.org", "p@ss:w@rd"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(grants(&r), [("/home/bob".into(), ReadWrite)]);
    // A path may hold `@` and `:` too, as long as it does not end in what looks like an access.
    assert_eq!(grants(&rule("@/a@b/c:d.txt,/x:1")), [("/a@b/c:d.txt".into(), ReadOnly), ("/x:1".into(), ReadOnly)]);
}

#[test]
fn bad_rules_say_what_and_where() {
    for (text, column, want) in [
        ("", 1, "the rule is empty"),
        ("alice", 6, "no `@/PATH`"),
        ("alice:pw", 9, "no `@/PATH`"),
        ("alice@/a", 6, "no password"),
        ("alice:pw@a", 11, "no `@/PATH`"),
        (":pw@/a", 1, "the user name is empty"),
        ("al ice:pw@/a", 1, "spaces"),
        ("anonymous:pw@/a", 1, "reserved"),
        ("alice:@/a", 7, "the password is empty"),
        ("alice:p\tw@/a", 8, "control character"),
        ("alice:$1$abc$def@/a", 7, "unsupported password hash `$1$`"),
        ("alice:$apr1$x$y@/a", 7, "`$apr1$`"),
        ("alice:$2y$05$short@/a", 7, "not a valid bcrypt hash"),
        ("alice:$6$salt$short@/a", 7, "not a valid SHA-512 crypt hash"),
        ("alice:pw@/a:rx", 12, "unknown access `:rx`"),
        ("alice:pw@/a,/b:RW", 15, "unknown access `:RW`"),
        ("alice:pw@/a,,/b", 13, "an empty path"),
        ("alice:pw@/a,", 13, "an empty path"),
        ("@", 2, "no path after `@`"),
        ("@a", 2, "must start with `/`"),
        ("@/a,b", 5, "must start with `/`"),
        ("@/a/../b", 2, "`..`"),
        ("@//a", 2, "empty segment"),
        ("@/a,/a/:rw", 5, "/a is given twice"),
        ("ünï:pw@/a,/b\n", 11, "control character"),
    ] {
        let e = Rule::parse(text).expect_err(text);
        assert!(e.reason.contains(want), "{text:?}: {e}");
        assert_eq!(e.column, column, "{text:?}: {e}");
        assert!(e.to_string().starts_with(&format!("column {column}: ")), "{e}");
    }
}

#[test]
fn errors_never_quote_the_password() {
    for (text, password) in [
        ("alice:$9$TOPSECRETVALUE@/a", "TOPSECRETVALUE"),
        ("alice:$TOPSECRETVALUE@/a", "TOPSECRETVALUE"),
        ("alice:$2y$05$TOPSECRETVALUE@/a", "TOPSECRETVALUE"),
        ("alice:$6$TOPSECRETVALUE$x@/a", "TOPSECRETVALUE"),
        ("alice:TOPSECRETVALUE@/a:xy", "TOPSECRETVALUE"),
        ("alice:TOPSECRETVALUE@/../a", "TOPSECRETVALUE"),
    ] {
        let e = Rule::parse(text).expect_err(text);
        assert!(!e.to_string().contains(password), "{text:?}: {e}");
    }
}

#[test]
fn one_rule_per_user_and_one_for_anonymous() {
    let dup = Rules::new(["alice:a@/a", "@/pub", "alice:b@/b"].map(rule)).expect_err("alice twice");
    assert_eq!(dup.index, 2);
    assert!(dup.reason.contains("alice"), "{dup}");
    let dup = Rules::new(["@/a", "bob:b@/b", "@/c"].map(rule)).expect_err("anonymous twice");
    assert_eq!(dup.index, 2);
    assert!(dup.reason.contains("anonymous"), "{dup}");
    let r = rules(&["bob:b@/b", "alice:a@/a"]);
    assert_eq!(r.users().collect::<Vec<_>>(), ["alice", "bob"]);
}

// ---- passwords -----------------------------------------------------------------------------------

/// The test vectors of the schemes' own specifications: bcrypt's "U*U" (OpenBSD's
/// regression test), and SHA-512 crypt's "Hello world!" (Drepper's specification), with and
/// without `rounds=`; and hashes made by the tools people use: `htpasswd -nbB` (Apache's,
/// `$2y$`) and `openssl passwd -6`.
#[test]
fn published_hashes_check_as_their_authors_say() {
    for (hash, right) in [
        ("$2y$04$zoCAODyrsKZQDJ8wjsH2U.5JRW/WD9/6rjAgzfIhq6FVl1PyREAzm", "p@ss:w0rd"),
        ("$2y$05$kBzPZJG8a2UfLraWr8Xi2eqJjNG0AixSeQjgTuQpn9TyDI.XG0l5S", "bob password"),
        (
            "$6$ZQ7uAOm8Y0mjqHPx$7iiU3ddrNyLOKm0C4do6GtT8uLC47a76mXMMkMzFJ.uHmt08qTJOh.CL3p1MesWpbyLPsx9dU4RVRM6XpfVQF/",
            "carol password",
        ),
    ] {
        let r = rules(&[&format!("someone:{hash}@/")]);
        assert_eq!(login(&r, "someone", right).user(), Some("someone"), "{hash}");
        assert_eq!(r.login("someone", &Secret::new("bob passworD")), Err(LoginError::WrongPassword));
    }
    let bcrypt_a = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
    let sha = "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1";
    let sha_rounds = "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZ\
                      eHBy/YTBmSK6H9qs/y3RnOaw5v.";
    for (hash, right) in [
        (bcrypt_a, "U*U"),
        (&bcrypt_a.replace("$2a$", "$2y$"), "U*U"),
        (sha, "Hello world!"),
        (sha_rounds, "Hello world!"),
    ] {
        let pw = Password::parse(hash).unwrap_or_else(|e| panic!("{hash}: {e:?}"));
        assert!(pw.is_hashed());
        assert!(pw.verify(&Secret::new(right)), "{hash}");
        for wrong in ["", "U*V", "hello world!", "Hello world! ", hash] {
            assert!(!pw.verify(&Secret::new(wrong)), "{hash} with {wrong:?}");
        }
        assert!(!format!("{pw:?}").contains(&hash[7..]), "{pw:?}");
    }
}

#[test]
fn hashes_made_here_check_too() {
    use sha_crypt::PasswordHasher;
    let bcrypt = bcrypt::hash_with_salt("correct horse", 4, [7; 16]).unwrap().format_for_version(bcrypt::Version::TwoY);
    let sha =
        sha_crypt::ShaCrypt::default().hash_password_with_salt(b"correct horse", b"abcdefgh").unwrap().to_string();
    assert!(bcrypt.starts_with("$2y$04$") && sha.starts_with("$6$"), "{bcrypt} {sha}");
    for hash in [bcrypt, sha] {
        let r = rules(&[&format!("alice:{hash}@/a")]);
        assert!(r.login_is_costly("alice"));
        assert_eq!(login(&r, "alice", "correct horse").user(), Some("alice"));
        assert_eq!(r.login("alice", &Secret::new("correct horsE")), Err(LoginError::WrongPassword));
        assert_eq!(r.login("alicE", &Secret::new("correct horse")), Err(LoginError::UnknownUser));
    }
}

#[test]
fn clear_passwords_match_exactly() {
    let r = rules(&["alice:p@ss:word@/a"]);
    assert!(!r.login_is_costly("alice") && !r.login_is_costly("nobody"));
    assert_eq!(login(&r, "alice", "p@ss:word").user(), Some("alice"));
    for wrong in ["", "p@ss:wor", "p@ss:word ", "P@ss:word", "p@ss:wordp@ss:word"] {
        assert_eq!(r.login("alice", &Secret::new(wrong)), Err(LoginError::WrongPassword), "{wrong:?}");
    }
    assert_eq!(r.login(ANONYMOUS, &Secret::new("x")), Err(LoginError::UnknownUser));
}

#[test]
fn out_of_range_hash_parameters_are_refused_at_parse() {
    let e = Password::parse(
        "$6$rounds=10$salt$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
    )
    .unwrap_err();
    assert!(e.1.contains("rounds"), "{e:?}");
    let e = Password::parse("$2y$99$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW").unwrap_err();
    assert!(e.1.contains("cost"), "{e:?}");
}

// ---- decisions -----------------------------------------------------------------------------------

#[test]
fn no_rule_reads_everything_and_writes_nothing() {
    let open = Rules::open();
    assert!(!open.has_accounts() && open.anonymous_may_read_something());
    assert!(!Rules::new([]).unwrap().has_accounts());
    let anon = Who::anonymous();
    for path in ["/", "/a", "/a/b/c.txt"] {
        assert_eq!(open.decide(&anon, &p(path), Need::Read), Decision::Allow);
        // 403, not 401: no login could allow it.
        assert_eq!(open.decide(&anon, &p(path), Need::Write), Decision::Forbidden);
        assert_eq!(open.visibility(&anon, &p(path)), Visibility::Readable);
    }
    assert_eq!(open.login("anyone", &Secret::new("x")), Err(LoginError::UnknownUser));
}

#[test]
fn anonymous_is_refused_with_401_and_users_with_403() {
    use Decision::*;
    let r = rules(&["@/pub", "alice:a@/pub/alice:rw,/data", "bob:b@/data/bob:rw"]);
    let (anon, alice, bob) = (Who::anonymous(), login(&r, "alice", "a"), login(&r, "bob", "b"));
    for (who, path, need, want) in [
        (&anon, "/pub/x.txt", Need::Read, Allow),
        (&anon, "/pub/x.txt", Need::Write, Unauthenticated),
        (&anon, "/data", Need::Read, Unauthenticated),
        (&anon, "/", Need::Read, Unauthenticated),
        (&alice, "/pub/alice/new.txt", Need::Write, Allow),
        (&alice, "/pub/alice", Need::Write, Allow),
        (&alice, "/pub/alicex", Need::Write, Forbidden),
        (&alice, "/pub/alicex", Need::Read, Allow), // anonymous may read /pub, so alice may too
        (&alice, "/data/bob/f", Need::Read, Allow),
        (&alice, "/data/bob/f", Need::Write, Forbidden),
        (&alice, "/secret", Need::Read, Forbidden),
        (&bob, "/data/bob/f", Need::Write, Allow),
        (&bob, "/data/f", Need::Read, Forbidden),
        (&bob, "/databob", Need::Read, Forbidden),
        (&bob, "/pub/alice/x", Need::Read, Allow),
        (&bob, "/pub/alice/x", Need::Write, Forbidden),
    ] {
        assert_eq!(r.decide(who, &p(path), need), want, "{who:?} {need:?} {path}");
    }
}

#[test]
fn the_longest_grant_decides_either_way() {
    let r = rules(&["alice:a@/a:rw,/a/b,/a/b/c:rw"]);
    let alice = login(&r, "alice", "a");
    for (path, want) in [
        ("/a", Some(Access::ReadWrite)),
        ("/a/x", Some(Access::ReadWrite)),
        ("/a/b", Some(Access::ReadOnly)),
        ("/a/bb", Some(Access::ReadWrite)),
        ("/a/b/x", Some(Access::ReadOnly)),
        ("/a/b/c/d", Some(Access::ReadWrite)),
        ("/a/b/cd", Some(Access::ReadOnly)),
        ("/ab", None),
        ("/", None),
    ] {
        assert_eq!(r.access(&alice, &p(path)), want, "{path}");
    }
}

#[test]
fn listings_show_the_way_to_grants_and_nothing_else() {
    let r = rules(&["@/pub", "alice:a@/home/alice:rw,/projects/x/docs"]);
    let (anon, alice) = (Who::anonymous(), login(&r, "alice", "a"));
    for (who, path, want) in [
        (&anon, "/", Visibility::Passage),
        (&anon, "/pub", Visibility::Readable),
        (&anon, "/pub/deep/x", Visibility::Readable),
        (&anon, "/home", Visibility::Hidden),
        (&anon, "/publish", Visibility::Hidden),
        (&alice, "/", Visibility::Passage),
        (&alice, "/home", Visibility::Passage),
        (&alice, "/home/alice", Visibility::Readable),
        (&alice, "/home/bob", Visibility::Hidden),
        (&alice, "/projects", Visibility::Passage),
        (&alice, "/projects/x", Visibility::Passage),
        (&alice, "/projects/y", Visibility::Hidden),
        (&alice, "/projects/x/docs/a", Visibility::Readable),
        (&alice, "/pub", Visibility::Readable),
    ] {
        assert_eq!(r.visibility(who, &p(path)), want, "{who:?} {path}");
    }
    let users_only = rules(&["alice:a@/a"]);
    assert!(!users_only.anonymous_may_read_something());
    assert_eq!(users_only.visibility(&anon, &DfsPath::root()), Visibility::Hidden);
    assert!(rules(&["@/x"]).anonymous_may_read_something());
}

// ---- Basic credentials ---------------------------------------------------------------------------

#[test]
fn basic_credentials() {
    // RFC 7617's example.
    let c = Credentials::from_basic(b"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==").unwrap();
    assert_eq!((c.user.as_str(), c.password.expose()), ("Aladdin", "open sesame"));
    assert_eq!(c.to_basic(), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    assert_eq!(Credentials::from_basic(b"basic   QWxhZGRpbjpvcGVuIHNlc2FtZQ==").unwrap(), c);
    // The password may hold `:`.
    let c = Credentials::new("u", Secret::new("a:b"));
    assert_eq!(Credentials::from_basic(c.to_basic().as_bytes()).unwrap(), c);
    for (value, want) in [
        (&b"Bearer abc"[..], BasicError::NotBasic),
        (b"Basic", BasicError::NotBasic),
        (b"Basic !!!", BasicError::NotBase64),
        (b"Basic bm9jb2xvbg==", BasicError::NoColon), // "nocolon"
        (b"Basic OnB3", BasicError::EmptyUser),       // ":pw"
        (b"Basic YQpiOmM=", BasicError::Control),     // "a\nb:c"
        (b"Basic /w==", BasicError::NotUtf8),         // 0xff
        (b"\xff\xfe", BasicError::NotBasic),
    ] {
        assert_eq!(Credentials::from_basic(value), Err(want), "{:?}", String::from_utf8_lossy(value));
    }
    let huge = format!("Basic {}", "QUFB".repeat(2000));
    assert!(Credentials::from_basic(huge.as_bytes()).is_err());
}

// ---- properties ----------------------------------------------------------------------------------

/// Paths over a tiny alphabet, so that grants and requests collide, share prefixes that are
/// not segment boundaries (`a` and `ab`) and nest.
fn path_strategy() -> impl Strategy<Value = DfsPath> {
    prop::collection::vec(prop::sample::select(vec!["a", "ab", "b"]), 0..4)
        .prop_map(|segs| DfsPath::parse_request(&segs.join("/")).unwrap())
}

fn access_strategy() -> impl Strategy<Value = Access> {
    prop::bool::ANY.prop_map(|rw| if rw { Access::ReadWrite } else { Access::ReadOnly })
}

fn grants_strategy() -> impl Strategy<Value = Vec<Grant>> {
    prop::collection::vec((path_strategy(), access_strategy()), 1..5).prop_map(|gs| {
        let mut seen = std::collections::HashSet::new();
        gs.into_iter()
            .filter(|(path, _)| seen.insert(path.clone()))
            .map(|(path, access)| Grant { path, access })
            .collect()
    })
}

/// A rule as its text: what a person would write.
fn render(subject: &str, grants: &[Grant]) -> String {
    let paths: Vec<String> = grants
        .iter()
        .map(|g| format!("{}{}", g.path, if g.access == Access::ReadWrite { ":rw" } else { ":ro" }))
        .collect();
    format!("{subject}@{}", paths.join(","))
}

/// The naive model: from the path up to the root, the first path that has a grant decides.
fn model(grants: &[Grant], path: &DfsPath) -> Option<Access> {
    let map: HashMap<&str, Access> = grants.iter().map(|g| (g.path.as_str(), g.access)).collect();
    let mut at = Some(path.clone());
    while let Some(here) = at {
        if let Some(a) = map.get(here.as_str()) {
            return Some(*a);
        }
        at = here.parent();
    }
    None
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Longest prefix on segment boundaries, for a user and anonymous clients, as the naive
    /// model has it; the decision and the visibility follow from it.
    #[test]
    fn longest_prefix_matches_the_model(
        anon in prop::option::of(grants_strategy()),
        alice in grants_strategy(),
        path in path_strategy(),
        need_write in prop::bool::ANY,
    ) {
        let mut texts = vec![render("alice:pw", &alice)];
        if let Some(a) = &anon {
            texts.push(render("", a));
        }
        let parsed: Vec<Rule> = texts.iter().map(|t| Rule::parse(t).unwrap()).collect();
        prop_assert_eq!(&parsed[0].grants, &alice, "the rule reads back as rendered");
        let r = Rules::new(parsed).unwrap();
        let anon = anon.unwrap_or_default();
        let need = if need_write { Need::Write } else { Need::Read };
        let alice_who = r.login("alice", &Secret::new("pw")).unwrap();
        for (who, own) in [(Who::anonymous(), &[][..]), (alice_who, &alice[..])] {
            let want = model(&anon, &path).max(model(own, &path));
            prop_assert_eq!(r.access(&who, &path), want, "{:?} at {}", who, path);
            let decision = match want {
                Some(a) if a.allows(need) => Decision::Allow,
                _ if who.is_anonymous() => Decision::Unauthenticated,
                _ => Decision::Forbidden,
            };
            prop_assert_eq!(r.decide(&who, &path, need), decision);
            let below = anon.iter().chain(own).any(|g| g.path != path && g.path.is_within(&path));
            let visibility = match (want, below) {
                (Some(_), _) => Visibility::Readable,
                (None, true) => Visibility::Passage,
                (None, false) => Visibility::Hidden,
            };
            prop_assert_eq!(r.visibility(&who, &path), visibility);
            // Whatever is readable, every path below it is readable too.
            if want.is_some() {
                let child = path.join("zz").unwrap();
                prop_assert!(r.access(&who, &child).is_some());
            }
        }
    }

    /// Any user name and password that Basic can carry go there and back.
    #[test]
    fn basic_round_trips(user in "[^:\\p{Cc}]{1,20}", password in "[^\\p{Cc}]{0,30}") {
        let c = Credentials::new(user, Secret::new(password));
        prop_assert_eq!(Credentials::from_basic(c.to_basic().as_bytes()).unwrap(), c);
    }

    /// No rule, accepted or refused, prints its clear-text password.
    #[test]
    fn passwords_never_print(password in "[A-Za-z0-9@:!]{12,20}", tail in "(@/[a-z]{1,3}(:rw|:ro|:xy)?)?") {
        let text = format!("alice:{password}{tail}");
        match Rule::parse(&text) {
            Ok(r) => {
                let shown = format!("{r:?}");
                prop_assert!(!shown.contains(&password), "{}", shown);
            }
            Err(e) => prop_assert!(!e.to_string().contains(&password), "{}", e),
        }
    }
}
