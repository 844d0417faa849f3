//! Who may read and change what through FTP: the one place that answers "may this session read
//! this path?" ([`may_read`]) and "may it change this path?" ([`may_write`]), from the node's
//! rules ([`dftp_core::Rules`], the same as HTTP's).
//!
//! Both the command gate (before libunftp opens or asks for a data connection, or answers `350`
//! to `RNFR`) and the storage back-end (which checks again when it makes the change) ask here,
//! so that the answer is the same wherever it is given.
//!
//! A session that may read only part of the tree sees only that part: a directory on the way to
//! a granted path can be entered and listed, showing only the entries that lead to something
//! readable; anything else is refused (`550`) before it is looked up.

use std::fmt;

use dftp_core::access::Visibility;
use dftp_core::{Credentials, DfsPath, Need, Rules, Who};
use http::HeaderValue;
use unftp_core::auth::UserDetail;

/// The FTP commands that change the tree, each refused unless [`may_write`] allows it.
pub const WRITE_VERBS: [&str; 8] = ["STOR", "APPE", "STOU", "DELE", "MKD", "RMD", "RNFR", "RNTO"];

/// The FTP commands that read a path (or the working directory), each refused unless
/// [`may_read`] allows it.
pub const READ_VERBS: [&str; 9] = ["RETR", "LIST", "NLST", "MLSD", "MLST", "CWD", "SIZE", "MDTM", "STAT"];

/// Whether `verb` (upper case) asks to change the tree.
pub fn is_write(verb: &str) -> bool {
    WRITE_VERBS.contains(&verb)
}

/// Whether `verb` (upper case) reads a path.
pub fn is_read(verb: &str) -> bool {
    READ_VERBS.contains(&verb)
}

/// A logged-in FTP session's user: who the rules see, and the login itself, which goes with
/// every file fetched from its owner node (as HTTP Basic credentials), so that the owner checks
/// it against its own rules. The password stays in this session's memory and never prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FtpUser {
    who: Who,
    login: Option<Credentials>,
}

impl FtpUser {
    pub fn anonymous() -> FtpUser {
        FtpUser { who: Who::anonymous(), login: None }
    }

    /// A user whose password [`Rules::login`] accepted as `who`.
    pub fn logged_in(who: Who, login: Credentials) -> FtpUser {
        FtpUser { who, login: Some(login) }
    }

    pub fn who(&self) -> &Who {
        &self.who
    }

    /// The `Authorization` that fetches from owner nodes carry: none for anonymous sessions.
    pub fn authorization(&self) -> Option<HeaderValue> {
        let mut v = HeaderValue::from_str(&self.login.as_ref()?.to_basic()).ok()?;
        v.set_sensitive(true);
        Some(v)
    }
}

impl fmt::Display for FtpUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.who.user().unwrap_or(dftp_core::access::ANONYMOUS))
    }
}

impl UserDetail for FtpUser {}

/// Why a command is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// There are no accounts: nobody may change anything.
    ReadOnly,
    /// The rules do not give this session `need` at `path`.
    NotAllowed { user: String, path: DfsPath, need: Need },
    /// A change that names no path of the tree (a path that leads outside it).
    NoPath,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denied::ReadOnly => f.write_str("permission denied: this FTP server is read-only"),
            Denied::NotAllowed { user, path, need } => {
                let verb = if *need == Need::Read { "read" } else { "change" };
                write!(f, "permission denied: {user} may not {verb} {path}")
            }
            Denied::NoPath => f.write_str("permission denied: no path of the tree to change"),
        }
    }
}

impl std::error::Error for Denied {}

fn who(user: Option<&FtpUser>) -> Who {
    user.map_or_else(Who::anonymous, |u| u.who.clone())
}

fn not_allowed(user: Option<&FtpUser>, path: &DfsPath, need: Need) -> Denied {
    let user = user.map_or_else(|| dftp_core::access::ANONYMOUS.to_string(), |u| u.to_string());
    Denied::NotAllowed { user, path: path.clone(), need }
}

/// Whether `user` may read `path`, which is a directory (`is_dir`) or not (a file, or nothing):
/// a readable path, or a directory on the way to one.
pub fn may_read(rules: &Rules, user: Option<&FtpUser>, path: &DfsPath, is_dir: bool) -> Result<(), Denied> {
    match rules.visibility(&who(user), path) {
        Visibility::Readable => Ok(()),
        Visibility::Passage if is_dir => Ok(()),
        _ => Err(not_allowed(user, path, Need::Read)),
    }
}

/// Whether a listing of a directory `user` may read shows `path`; `None` when it shows every
/// entry (the directory is readable, so everything in it is).
pub fn listing_filter<'a>(rules: &'a Rules, user: &FtpUser, dir: &DfsPath) -> Option<impl Fn(&DfsPath) -> bool + 'a> {
    let who = user.who.clone();
    let readable = rules.visibility(&who, dir) == Visibility::Readable;
    (!readable).then_some(move |p: &DfsPath| rules.visibility(&who, p) != Visibility::Hidden)
}

/// Whether `user` may change the tree at `path` (`None` for a path outside the tree). A
/// server without accounts is read-only whatever the path.
pub fn may_write(rules: &Rules, user: Option<&FtpUser>, path: Option<&DfsPath>) -> Result<(), Denied> {
    if !rules.has_accounts() {
        return Err(Denied::ReadOnly);
    }
    let path = path.ok_or(Denied::NoPath)?;
    match rules.decide(&who(user), path, Need::Write) {
        dftp_core::Decision::Allow => Ok(()),
        _ => Err(not_allowed(user, path, Need::Write)),
    }
}

/// One line for `STAT`: what `user` may do in the working directory `cwd`.
pub fn status_line(rules: &Rules, user: Option<&FtpUser>, cwd: Option<&DfsPath>) -> String {
    match may_write(rules, user, cwd) {
        Ok(()) => "Changes are allowed in the working directory".into(),
        Err(Denied::ReadOnly) => {
            "The tree is read-only: uploads, deletions, renames and new directories are refused".into()
        }
        Err(_) => "No changes are allowed in the working directory".into(),
    }
}

#[cfg(test)]
mod tests {
    use dftp_core::{Rule, Secret};

    use super::*;

    fn rules(list: &[&str]) -> Rules {
        Rules::new(list.iter().map(|r| Rule::parse(r).unwrap())).unwrap()
    }

    fn path(s: &str) -> DfsPath {
        DfsPath::parse_request(s).unwrap()
    }

    fn alice(r: &Rules) -> FtpUser {
        let who = r.login("alice", &Secret::new("pw")).unwrap();
        FtpUser::logged_in(who, Credentials::new("alice", Secret::new("pw")))
    }

    #[test]
    fn without_accounts_everyone_reads_and_nobody_writes() {
        let open = Rules::open();
        let paths = [None, Some(DfsPath::root()), Some(path("a/b.txt"))];
        for user in [None, Some(&FtpUser::anonymous())] {
            for p in &paths {
                assert_eq!(may_write(&open, user, p.as_ref()), Err(Denied::ReadOnly), "{user:?} at {p:?}");
                if let Some(p) = p {
                    assert_eq!(may_read(&open, user, p, false), Ok(()));
                }
            }
        }
        assert!(Denied::ReadOnly.to_string().contains("read-only"));
        assert!(status_line(&open, Some(&FtpUser::anonymous()), None).contains("read-only"));
    }

    #[test]
    fn rules_decide_reads_and_writes() {
        let r = rules(&["@/pub", "alice:pw@/pub/alice:rw,/home/alice"]);
        let (anon, alice) = (FtpUser::anonymous(), alice(&r));
        assert_eq!(may_read(&r, Some(&anon), &path("pub/x"), false), Ok(()));
        let refused = may_read(&r, Some(&anon), &path("home/alice/x"), false).unwrap_err();
        assert_eq!(refused.to_string(), "permission denied: anonymous may not read /home/alice/x");
        assert_eq!(may_read(&r, Some(&alice), &path("home/alice/x"), false), Ok(()));
        // The way to a grant: as a directory only.
        assert_eq!(may_read(&r, Some(&alice), &path("home"), true), Ok(()));
        assert!(may_read(&r, Some(&alice), &path("home"), false).is_err());
        assert!(may_read(&r, Some(&anon), &path("home"), true).is_err());

        assert_eq!(may_write(&r, Some(&alice), Some(&path("pub/alice/new"))), Ok(()));
        let refused = may_write(&r, Some(&alice), Some(&path("pub/new"))).unwrap_err();
        assert_eq!(refused.to_string(), "permission denied: alice may not change /pub/new");
        assert!(may_write(&r, Some(&anon), Some(&path("pub/alice/new"))).is_err());
        assert_eq!(may_write(&r, Some(&alice), None), Err(Denied::NoPath));
        assert_eq!(
            status_line(&r, Some(&alice), Some(&path("pub/alice"))),
            "Changes are allowed in the working directory"
        );
        assert!(status_line(&r, Some(&alice), Some(&path("pub"))).contains("No changes"));
        assert!(status_line(&r, Some(&anon), Some(&path("pub/alice"))).contains("No changes"));
    }

    #[test]
    fn listings_on_the_way_show_only_what_leads_on() {
        let r = rules(&["alice:pw@/home/alice"]);
        let alice = alice(&r);
        assert!(listing_filter(&r, &alice, &path("home/alice")).is_none());
        let show = listing_filter(&r, &alice, &path("home")).expect("a filter on the way");
        assert!(show(&path("home/alice")) && !show(&path("home/bob")));
    }

    #[test]
    fn the_login_goes_to_owners_and_never_prints() {
        let r = rules(&["alice:pw@/"]);
        let alice = alice(&r);
        assert_eq!(alice.authorization().unwrap().to_str().unwrap(), "Basic YWxpY2U6cHc=");
        assert!(alice.authorization().unwrap().is_sensitive());
        assert_eq!(FtpUser::anonymous().authorization(), None);
        assert_eq!(alice.to_string(), "alice");
        assert!(!format!("{alice:?}").contains("pw\""), "{alice:?}");
    }

    #[test]
    fn verbs() {
        for verb in ["STOR", "APPE", "STOU", "DELE", "MKD", "RMD", "RNFR", "RNTO"] {
            assert!(is_write(verb) && !is_read(verb), "{verb}");
        }
        for verb in ["RETR", "LIST", "NLST", "MLSD", "MLST", "SIZE", "MDTM", "STAT", "CWD"] {
            assert!(is_read(verb) && !is_write(verb), "{verb}");
        }
        for verb in ["stor", "SITE", "", "NOOP", "PWD"] {
            assert!(!is_write(verb) && !is_read(verb), "{verb}");
        }
    }
}
