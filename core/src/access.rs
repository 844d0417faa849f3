//! Accounts and per-path permissions: the rule grammar of `--auth` (the syntax dufs users
//! know), the rule set, and the one decision every interface asks: may this client do this
//! here?
//!
//! A rule grants paths to one user, or to anonymous clients:
//!
//! ```text
//! USER:PASSWORD@PATH[:ro|:rw][,PATH[:ro|:rw]…]
//! @PATH[:ro|:rw][,PATH[:ro|:rw]…]
//! ```
//!
//! `:ro` (read) when the access is left out, `:rw` read and write. A grant covers its path and
//! everything below it, on segment boundaries (`/a` covers `/a/x`, not `/ab`). For a client, the
//! grant with the longest path that covers the request's path decides. A user also has whatever
//! anonymous clients have: logging in never takes a right away.
//!
//! Without any rule, everybody may read everything and nobody may write (a node without
//! `--auth` serves as it always did). With rules, a client has exactly what they grant.
//!
//! Passwords are held as [`Secret`]s, which never print: not in `Debug`, not in `Display`, not
//! in an error. A password is clear text or a hash (bcrypt, what `htpasswd -B` writes, or
//! SHA-512 crypt, what `mkpasswd -m sha-512` writes). Checking a password against a hash
//! ([`Rules::login`]) is deliberately slow (milliseconds to seconds of CPU): it is pure
//! computation, so it lives here with the rules, and the shell decides where and how often it
//! runs (off its async threads, a bounded number at once, each outcome remembered).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use smol_str::SmolStr;
use subtle::ConstantTimeEq;

use crate::path::DfsPath;

/// The reserved FTP user name of anonymous clients. No rule may name a user so.
pub const ANONYMOUS: &str = "anonymous";

/// What a grant allows below its path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Access {
    /// `:ro`: read (list, download).
    ReadOnly,
    /// `:rw`: read and change (upload, delete, rename, make directories).
    ReadWrite,
}

impl Access {
    pub fn allows(self, need: Need) -> bool {
        match need {
            Need::Read => true,
            Need::Write => self == Access::ReadWrite,
        }
    }
}

/// What a request needs at a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Need {
    Read,
    Write,
}

/// The answer to a request, as far as the rules go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decision {
    Allow,
    /// Refused to an anonymous client: logging in might help (HTTP 401 with a challenge).
    Unauthenticated,
    /// Refused to this client, whoever it is (HTTP 403): a logged-in user without the right,
    /// or a write where no rule exists, so that no login could allow it.
    Forbidden,
}

/// What a client may see of a path in listings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Visibility {
    /// The client may read it, and so everything below it.
    Readable,
    /// The client may not read it, but something below it: a directory on the way to a grant
    /// (an ancestor of a granted path). It may be listed, showing only what leads on.
    Passage,
    /// Neither: not shown, and refused when asked for.
    Hidden,
}

// ---- secrets -----------------------------------------------------------------------------------

/// A password (or a password hash) that never prints: `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself, for the few places that must have it: checking it, and sending it
    /// to the node that owns a file (`Authorization`).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A user's password as a rule gives it.
#[derive(Clone, PartialEq, Eq)]
pub enum Password {
    Clear(Secret),
    /// `$2a$`, `$2b$` or `$2y$`: bcrypt, checked in its cost factor's time.
    Bcrypt(Secret),
    /// `$6$`: SHA-512 crypt, checked in its rounds' time.
    Sha512Crypt(Secret),
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Password::Clear(_) => "Password::Clear(***)",
            Password::Bcrypt(_) => "Password::Bcrypt(***)",
            Password::Sha512Crypt(_) => "Password::Sha512Crypt(***)",
        })
    }
}

/// Where in a password something is wrong (a byte offset into it) and what.
type PasswordError = (usize, String);

/// bcrypt's cost factors, as the bcrypt crate takes them.
const BCRYPT_COSTS: std::ops::RangeInclusive<u32> = 4..=31;
/// Characters of the hash part of a SHA-512 crypt string (64 bytes in crypt's base64).
const SHA512_HASH_LEN: usize = 86;

fn crypt_base64(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '.' || c == '/'
}

impl Password {
    /// A password as written in a rule: clear text, or a hash when it starts with `$` (a
    /// clear-text password cannot: `$1$` and `$apr1$` are then hashes we refuse, not passwords
    /// that would never match what their owner types).
    pub fn parse(s: &str) -> Result<Password, PasswordError> {
        if s.is_empty() {
            return Err((0, "the password is empty".into()));
        }
        if let Some(i) = s.find(char::is_control) {
            return Err((i, "the password contains a control character".into()));
        }
        if !s.starts_with('$') {
            return Ok(Password::Clear(Secret::new(s)));
        }
        if ["$2a$", "$2b$", "$2y$"].iter().any(|p| s.starts_with(p)) {
            return check_bcrypt(s).map(|()| Password::Bcrypt(Secret::new(s))).map_err(|why| (0, why));
        }
        if s.starts_with("$6$") {
            return check_sha512(s).map(|()| Password::Sha512Crypt(Secret::new(s)));
        }
        // Named only when it looks like a scheme (`$1$`, `$apr1$`): never a piece of a password.
        let scheme = match s[1..].find('$') {
            Some(i) if i <= 8 && s[1..1 + i].chars().all(|c| c.is_ascii_alphanumeric()) => {
                format!("`{}` ", &s[..i + 2])
            }
            _ => String::new(),
        };
        Err((
            0,
            format!(
                "unsupported password hash {scheme}(a password that starts with `$` must be a hash): use bcrypt \
                 (`$2y$`, from `htpasswd -nbB USER PASSWORD`) or SHA-512 crypt (`$6$`, from `mkpasswd -m sha-512`)"
            ),
        ))
    }

    /// Whether `given` is this password. Constant-time for clear text; for a hash, as slow as
    /// the hash was made to be.
    pub fn verify(&self, given: &Secret) -> bool {
        let given = given.expose().as_bytes();
        match self {
            Password::Clear(p) => bool::from(p.expose().as_bytes().ct_eq(given)),
            Password::Bcrypt(h) => bcrypt::verify(given, h.expose()).unwrap_or(false),
            Password::Sha512Crypt(h) => {
                use sha_crypt::PasswordVerifier;
                sha_crypt::ShaCrypt::default().verify_password(given, h.expose()).is_ok()
            }
        }
    }

    /// Whether checking this password costs real CPU time (a hash).
    pub fn is_hashed(&self) -> bool {
        !matches!(self, Password::Clear(_))
    }
}

/// `$2y$CC$` and 53 characters of salt and hash, with a cost bcrypt accepts. The crate's own
/// error text is not passed on: it may quote the hash.
fn check_bcrypt(s: &str) -> Result<(), String> {
    let shape = "not a valid bcrypt hash: expected `$2y$` (or `$2a$`, `$2b$`), a two-digit cost, `$` and \
                 53 characters of salt and hash, as `htpasswd -nbB USER PASSWORD` writes";
    let parts = bcrypt::HashParts::from_str(s).map_err(|_| shape.to_string())?;
    if !BCRYPT_COSTS.contains(&parts.get_cost()) {
        return Err(format!("the bcrypt cost {} is outside {BCRYPT_COSTS:?}", parts.get_cost()));
    }
    Ok(())
}

/// `$6$[rounds=N$]SALT$HASH`, as glibc's crypt writes it.
fn check_sha512(s: &str) -> Result<(), PasswordError> {
    let shape = "not a valid SHA-512 crypt hash: expected `$6$[rounds=N$]SALT$HASH`, as `mkpasswd -m sha-512` writes";
    let fields: Vec<&str> = s["$6$".len()..].split('$').collect();
    let (rounds, salt, hash) = match fields[..] {
        [salt, hash] => (None, salt, hash),
        [rounds, salt, hash] => (Some(rounds), salt, hash),
        _ => return Err((0, shape.into())),
    };
    if let Some(r) = rounds {
        if sha_crypt::Params::from_str(r).is_err() {
            let range = format!("{}..={}", sha_crypt::Params::ROUNDS_MIN, sha_crypt::Params::ROUNDS_MAX);
            return Err((3, format!("not a valid SHA-512 crypt hash: expected `rounds=N` with N in {range}")));
        }
    }
    if salt.is_empty() || salt.contains(|c: char| c.is_whitespace() || c == ':') {
        return Err((0, shape.into()));
    }
    if hash.len() != SHA512_HASH_LEN || !hash.chars().all(crypt_base64) {
        return Err((0, shape.into()));
    }
    // The crate's own reading of the string (what `verify` will parse) must agree.
    if sha_crypt::PasswordHashRef::new(s).is_err() {
        return Err((0, shape.into()));
    }
    Ok(())
}

// ---- rules -------------------------------------------------------------------------------------

/// One path of a rule and what it allows there.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Grant {
    pub path: DfsPath,
    pub access: Access,
}

/// Whom a rule is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    Anonymous,
    User { name: SmolStr, password: Password },
}

/// One `--auth` rule, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub subject: Subject,
    /// In the order written; never empty, no path twice.
    pub grants: Vec<Grant>,
}

/// What is wrong with a rule, and where: the 1-based column (in characters) of the rule's
/// text. The reason never quotes the password.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {reason}")]
pub struct RuleError {
    pub column: usize,
    pub reason: String,
}

const SHAPE: &str = "expected USER:PASSWORD@/PATH[:ro|:rw][,/PATH…], or @/PATH… for anonymous access";

impl Rule {
    /// Parses a rule. The password ends at the first `@/` (a hash never contains `@`), so a
    /// clear-text password may hold `@` and `:` but not `@/`. Paths are separated by `,`, so a
    /// path in a rule cannot hold one; each may end with `:ro` or `:rw`.
    pub fn parse(text: &str) -> Result<Rule, RuleError> {
        let fail = |at: usize, reason: String| RuleError { column: text[..at].chars().count() + 1, reason };
        if text.is_empty() {
            return Err(fail(0, format!("the rule is empty: {SHAPE}")));
        }
        let (subject, paths_at) = if text.starts_with('@') {
            (Subject::Anonymous, 1)
        } else {
            let colon = text.find(':');
            let at = text.find("@/");
            let colon = match (colon, at) {
                (Some(c), Some(a)) if c < a => c,
                (_, Some(a)) => return Err(fail(a, format!("no password before `@`: {SHAPE}"))),
                (_, None) => return Err(fail(text.len(), format!("no `@/PATH` in the rule: {SHAPE}"))),
            };
            let name = &text[..colon];
            check_user(name).map_err(|why| fail(0, why))?;
            let rest = &text[colon + 1..];
            let at = rest.find("@/").expect("an `@/` was found after the colon");
            let password = Password::parse(&rest[..at]).map_err(|(i, why)| fail(colon + 1 + i, why))?;
            (Subject::User { name: SmolStr::new(name), password }, colon + 1 + at + 1)
        };
        let grants = parse_grants(&text[paths_at..]).map_err(|(i, why)| fail(paths_at + i, why))?;
        Ok(Rule { subject, grants })
    }
}

impl FromStr for Rule {
    type Err = RuleError;

    fn from_str(s: &str) -> Result<Rule, RuleError> {
        Rule::parse(s)
    }
}

fn check_user(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("the user name is empty: {SHAPE}"));
    }
    if name.contains(|c: char| c.is_control() || c.is_whitespace()) {
        return Err("the user name must not contain spaces or control characters".into());
    }
    if name == ANONYMOUS {
        return Err(format!("the user name `{ANONYMOUS}` is reserved: write `@/PATH` for anonymous access"));
    }
    Ok(())
}

/// `/a:rw,/b` into grants; errors carry a byte offset into `s`.
fn parse_grants(s: &str) -> Result<Vec<Grant>, PasswordError> {
    let mut grants: Vec<Grant> = Vec::new();
    let mut offset = 0;
    for item in s.split(',') {
        let at = offset;
        offset += item.len() + 1;
        if item.is_empty() {
            let why = if s.is_empty() { "no path after `@`" } else { "an empty path (a doubled or trailing `,`)" };
            return Err((at, why.into()));
        }
        let (path, access) = if let Some(p) = item.strip_suffix(":ro") {
            (p, Access::ReadOnly)
        } else if let Some(p) = item.strip_suffix(":rw") {
            (p, Access::ReadWrite)
        } else {
            if let Some((_, suffix)) = item.rsplit_once(':') {
                if suffix.len() == 2 && suffix.chars().all(|c| c.is_ascii_alphabetic()) {
                    let col = at + item.len() - 3;
                    return Err((
                        col,
                        format!("unknown access `:{suffix}`: use `:ro` (read) or `:rw` (read and write)"),
                    ));
                }
            }
            (item, Access::ReadOnly)
        };
        if !path.starts_with('/') {
            return Err((at, "a path must start with `/`".into()));
        }
        let path = DfsPath::parse_request(path).map_err(|e| (at, format!("bad path: {e}")))?;
        if grants.iter().any(|g| g.path == path) {
            return Err((at, format!("{path} is given twice in this rule")));
        }
        grants.push(Grant { path, access });
    }
    Ok(grants)
}

/// Who is asking: anonymous, or a user whose password was checked ([`Rules::login`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Who(Option<SmolStr>);

impl Who {
    pub fn anonymous() -> Who {
        Who(None)
    }

    pub fn is_anonymous(&self) -> bool {
        self.0.is_none()
    }

    /// The user's name; `None` for anonymous.
    pub fn user(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

/// Why a login failed. Both look the same to the client; the difference is for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error("no such user")]
    UnknownUser,
    #[error("wrong password")]
    WrongPassword,
}

/// Why a set of rules cannot be used together: the rule at `index` (0-based, in the order
/// given) repeats a subject.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct RulesError {
    pub index: usize,
    pub reason: String,
}

#[derive(Clone, Debug)]
struct Account {
    password: Password,
    /// Longest path first, so that the first grant that covers a path is the one that decides.
    grants: Vec<Grant>,
}

/// Every rule of a node, ready to answer [`Rules::decide`].
#[derive(Clone, Debug, Default)]
pub struct Rules {
    /// No rule at all: anonymous read of everything, no writes.
    open: bool,
    users: BTreeMap<SmolStr, Account>,
    /// Longest path first.
    anonymous: Vec<Grant>,
}

fn longest_first(mut grants: Vec<Grant>) -> Vec<Grant> {
    grants.sort_by_key(|g| std::cmp::Reverse(g.path.as_str().len()));
    grants
}

/// The access of the longest grant that covers `path`.
fn covering(grants: &[Grant], path: &DfsPath) -> Option<Access> {
    grants.iter().find(|g| path.is_within(&g.path)).map(|g| g.access)
}

impl Rules {
    /// The rules of a node started without any: everybody reads everything, nobody writes.
    pub fn open() -> Rules {
        Rules { open: true, ..Rules::default() }
    }

    /// The rules of a node, from its `--auth` rules in order: one rule per user, at most one
    /// for anonymous clients. No rule at all gives [`Rules::open`].
    pub fn new(rules: impl IntoIterator<Item = Rule>) -> Result<Rules, RulesError> {
        let mut out = Rules::default();
        let mut anonymous: Option<Vec<Grant>> = None;
        let mut any = false;
        for (index, rule) in rules.into_iter().enumerate() {
            any = true;
            match rule.subject {
                Subject::Anonymous => {
                    if anonymous.is_some() {
                        let reason = "a second rule for anonymous access: give all its paths in one rule".into();
                        return Err(RulesError { index, reason });
                    }
                    anonymous = Some(rule.grants);
                }
                Subject::User { name, password } => {
                    if out.users.contains_key(&name) {
                        let reason = format!("a second rule for user {name}: give all their paths in one rule");
                        return Err(RulesError { index, reason });
                    }
                    out.users.insert(name, Account { password, grants: longest_first(rule.grants) });
                }
            }
        }
        out.open = !any;
        out.anonymous = longest_first(anonymous.unwrap_or_default());
        Ok(out)
    }

    /// Whether there are rules at all (otherwise credentials mean nothing: there is no user).
    pub fn has_accounts(&self) -> bool {
        !self.open
    }

    /// Whether anonymous clients may read anything at all (an FTP anonymous login is refused
    /// otherwise).
    pub fn anonymous_may_read_something(&self) -> bool {
        self.open || !self.anonymous.is_empty()
    }

    /// The user names, sorted.
    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(SmolStr::as_str)
    }

    /// Checks `password` for `user`: slow for a hashed password, by design. Run it off any
    /// thread that must stay responsive.
    pub fn login(&self, user: &str, password: &Secret) -> Result<Who, LoginError> {
        let account = self.users.get(user).ok_or(LoginError::UnknownUser)?;
        if account.password.verify(password) {
            Ok(Who(Some(SmolStr::new(user))))
        } else {
            Err(LoginError::WrongPassword)
        }
    }

    /// Whether checking a password of `user` costs real CPU (a known user with a hashed
    /// password).
    pub fn login_is_costly(&self, user: &str) -> bool {
        self.users.get(user).is_some_and(|a| a.password.is_hashed())
    }

    /// What `who` may do at `path`: the longest grant that covers it, of the user's and of the
    /// anonymous rule (a user has at least what anonymous clients have). `None`: nothing.
    pub fn access(&self, who: &Who, path: &DfsPath) -> Option<Access> {
        if self.open {
            return Some(Access::ReadOnly);
        }
        let anonymous = covering(&self.anonymous, path);
        let own = who.user().and_then(|u| self.users.get(u)).and_then(|a| covering(&a.grants, path));
        anonymous.max(own)
    }

    /// The decision for `who` needing `need` at `path`.
    pub fn decide(&self, who: &Who, path: &DfsPath, need: Need) -> Decision {
        match self.access(who, path) {
            Some(a) if a.allows(need) => Decision::Allow,
            // No rule: no login could allow a write.
            _ if self.open || !who.is_anonymous() => Decision::Forbidden,
            _ => Decision::Unauthenticated,
        }
    }

    /// What `who` may see of `path` in a listing.
    pub fn visibility(&self, who: &Who, path: &DfsPath) -> Visibility {
        if self.access(who, path).is_some() {
            return Visibility::Readable;
        }
        let own = who.user().and_then(|u| self.users.get(u)).map_or(&[][..], |a| &a.grants[..]);
        let below = |g: &Grant| g.path != *path && g.path.is_within(path);
        if self.anonymous.iter().chain(own).any(below) {
            Visibility::Passage
        } else {
            Visibility::Hidden
        }
    }
}

// ---- HTTP Basic credentials ------------------------------------------------------------------

/// A user name and password, as HTTP Basic authentication carries them (RFC 7617) and as an
/// FTP login gives them. The password never prints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: Secret,
}

/// Why an `Authorization` header was not usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BasicError {
    #[error("only Basic authentication is supported")]
    NotBasic,
    #[error("the Basic credentials are not valid base64")]
    NotBase64,
    #[error("the Basic credentials are not UTF-8")]
    NotUtf8,
    #[error("the Basic credentials have no `:` between user and password")]
    NoColon,
    #[error("the Basic credentials have an empty user name")]
    EmptyUser,
    #[error("the Basic credentials contain a control character")]
    Control,
}

/// Longest `Authorization` value read: a user and password fit many times over, and a larger
/// one is not decoded.
pub const MAX_AUTHORIZATION: usize = 4096;

impl Credentials {
    pub fn new(user: impl Into<String>, password: Secret) -> Credentials {
        Credentials { user: user.into(), password }
    }

    /// Reads the value of an `Authorization` header: `Basic base64(user:password)`, the scheme
    /// in any case.
    pub fn from_basic(value: &[u8]) -> Result<Credentials, BasicError> {
        use base64::Engine;
        if value.len() > MAX_AUTHORIZATION {
            return Err(BasicError::NotBase64);
        }
        let value = std::str::from_utf8(value).map_err(|_| BasicError::NotBasic)?.trim();
        let (scheme, token) = value.split_once(' ').ok_or(BasicError::NotBasic)?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(BasicError::NotBasic);
        }
        let decoded =
            base64::engine::general_purpose::STANDARD.decode(token.trim_start()).map_err(|_| BasicError::NotBase64)?;
        let decoded = String::from_utf8(decoded).map_err(|_| BasicError::NotUtf8)?;
        if decoded.contains(char::is_control) {
            return Err(BasicError::Control);
        }
        let (user, password) = decoded.split_once(':').ok_or(BasicError::NoColon)?;
        if user.is_empty() {
            return Err(BasicError::EmptyUser);
        }
        Ok(Credentials { user: user.to_owned(), password: Secret::new(password) })
    }

    /// The value of an `Authorization` header that carries these credentials.
    pub fn to_basic(&self) -> String {
        use base64::Engine;
        let pair = format!("{}:{}", self.user, self.password.expose());
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
        let rule = Rule::parse("alice:hunter2@/a:rw").unwrap();
        assert!(!format!("{rule:?}").contains("hunter2"), "{rule:?}");
        let creds = Credentials::new("alice", s);
        assert!(!format!("{creds:?}").contains("hunter2"));
    }
}
