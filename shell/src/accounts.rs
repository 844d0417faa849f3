//! Logins, for HTTP and FTP alike: a user's password checked against the rules
//! ([`dftp_core::Rules::login`]) at a cost this node controls.
//!
//! A bcrypt or SHA-512 crypt check takes milliseconds to seconds of CPU on purpose, and every
//! HTTP request carries its Basic credentials again. So:
//! - a check runs on a blocking thread, never on an async one, and only so many run at once
//!   (one per core); the others wait for their turn without a thread;
//! - the outcome of a check is remembered, keyed by an HMAC of the user and password under a
//!   key made at start (never the password itself, which is not kept): the rules do not change
//!   while the node runs, so neither does the outcome, and the next request with the same
//!   credentials costs one HMAC. Failures are remembered too, so that a client repeating a
//!   wrong password costs no second check;
//! - a failed login is answered [`FAILED_LOGIN_DELAY`] after it arrived, whether the user is
//!   unknown or the password wrong (the two look the same), by a timer: the waiting costs the
//!   client time and this node nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dftp_core::{Credentials, Rules, Who};
use ring::hmac;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::blocking::Blocking;

/// How long after its arrival a failed login is answered.
pub const FAILED_LOGIN_DELAY: Duration = Duration::from_secs(1);

/// Outcomes remembered at most; past this, the failures are forgotten first, then everything.
const REMEMBERED: usize = 4096;

/// A login was refused: no such user, or the wrong password (the client is not told which).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("wrong user name or password")
    }
}

impl std::error::Error for Refused {}

/// An HMAC-SHA256 of a user and password.
type Tag = [u8; 32];

/// The rules of this node and the logins checked against them.
pub struct Accounts {
    rules: Arc<Rules>,
    /// Keys the remembered outcomes; made at start, never leaves the process.
    key: hmac::Key,
    /// HMAC of user and password → the user, or `None` for a refused login.
    outcomes: Mutex<HashMap<Tag, Option<Who>>>,
    /// Password checks that may run at once.
    checks: Semaphore,
    blocking: Blocking,
    /// Checks run so far (the cache's effect is observable in tests).
    checked: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts").field("rules", &self.rules).finish_non_exhaustive()
    }
}

impl Accounts {
    pub fn new(rules: Rules, blocking: Blocking) -> Accounts {
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &ring::rand::SystemRandom::new())
            .expect("the system's random number generator works");
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Accounts {
            rules: Arc::new(rules),
            key,
            outcomes: Mutex::default(),
            checks: Semaphore::new(cores),
            blocking,
            checked: Default::default(),
        }
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// How many password checks have run (outcomes remembered are not checked again).
    pub fn checks_run(&self) -> u64 {
        self.checked.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Logs `creds` in. A refusal comes [`FAILED_LOGIN_DELAY`] after the call.
    pub async fn login(&self, creds: &Credentials) -> Result<Who, Refused> {
        let arrived = Instant::now();
        let outcome = self.check(creds).await;
        if outcome.is_err() {
            tokio::time::sleep_until(arrived + FAILED_LOGIN_DELAY).await;
        }
        outcome
    }

    fn tag(&self, creds: &Credentials) -> Tag {
        let mut ctx = hmac::Context::with_key(&self.key);
        // The user's length first: ("ab", "c") and ("a", "bc") must not meet.
        ctx.update(&(creds.user.len() as u64).to_be_bytes());
        ctx.update(creds.user.as_bytes());
        ctx.update(creds.password.expose().as_bytes());
        let mut tag = [0; 32];
        tag.copy_from_slice(ctx.sign().as_ref());
        tag
    }

    fn remembered(&self, tag: &Tag) -> Option<Option<Who>> {
        self.lock().get(tag).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Tag, Option<Who>>> {
        self.outcomes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn remember(&self, tag: Tag, outcome: Option<Who>) {
        let mut outcomes = self.lock();
        if outcomes.len() >= REMEMBERED {
            outcomes.retain(|_, who| who.is_some());
            if outcomes.len() >= REMEMBERED {
                outcomes.clear();
            }
        }
        outcomes.insert(tag, outcome);
    }

    async fn check(&self, creds: &Credentials) -> Result<Who, Refused> {
        let tag = self.tag(creds);
        if let Some(known) = self.remembered(&tag) {
            return known.ok_or(Refused);
        }
        let Ok(_turn) = self.checks.acquire().await else { return Err(Refused) };
        // Checked meanwhile, by a request with the same credentials that had its turn first.
        if let Some(known) = self.remembered(&tag) {
            return known.ok_or(Refused);
        }
        let (rules, user, password) = (self.rules.clone(), creds.user.clone(), creds.password.clone());
        self.checked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let outcome = match self.blocking.run(move || rules.login(&user, &password)).await {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::error!("checking a password failed: {e}");
                return Err(Refused); // not remembered: a panic says nothing about the password
            }
        };
        match &outcome {
            Ok(_) => tracing::debug!("user {:?} logged in", creds.user),
            Err(why) => tracing::info!("login of user {:?} refused: {why}", creds.user),
        }
        let who = outcome.ok();
        self.remember(tag, who.clone());
        who.ok_or(Refused)
    }
}

#[cfg(test)]
mod tests {
    use dftp_core::{Rule, Secret};

    use super::*;

    fn accounts(rules: &[&str]) -> Accounts {
        let rules = Rules::new(rules.iter().map(|r| Rule::parse(r).unwrap())).unwrap();
        Accounts::new(rules, Blocking::Threads)
    }

    fn creds(user: &str, password: &str) -> Credentials {
        Credentials::new(user, Secret::new(password))
    }

    #[tokio::test(start_paused = true)]
    async fn a_login_is_checked_once_and_remembered() {
        let hash = bcrypt::hash_with_salt("pw", 4, [1; 16]).unwrap().to_string();
        let a = accounts(&[&format!("alice:{hash}@/a"), "bob:clear@/b"]);
        for _ in 0..3 {
            assert_eq!(a.login(&creds("alice", "pw")).await.unwrap().user(), Some("alice"));
        }
        assert_eq!(a.checks_run(), 1);
        assert_eq!(a.login(&creds("bob", "clear")).await.unwrap().user(), Some("bob"));
        assert_eq!(a.checks_run(), 2);
        // The same bytes split differently are other credentials.
        assert_eq!(a.login(&creds("bobc", "lear")).await, Err(Refused));
        assert_eq!(a.checks_run(), 3);
    }

    /// Unknown user and wrong password: both refused, both after the delay, and a repeated
    /// wrong password is not checked again.
    #[tokio::test(start_paused = true)]
    async fn a_refusal_comes_after_the_delay_and_is_remembered() {
        let a = accounts(&["alice:pw@/a"]);
        for (user, password) in [("alice", "wrong"), ("nobody", "pw"), ("alice", "wrong")] {
            let start = Instant::now();
            assert_eq!(a.login(&creds(user, password)).await, Err(Refused));
            assert!(start.elapsed() >= FAILED_LOGIN_DELAY, "{user}: {:?}", start.elapsed());
        }
        assert_eq!(a.checks_run(), 2);
        let start = Instant::now();
        assert!(a.login(&creds("alice", "pw")).await.is_ok());
        assert!(start.elapsed() < FAILED_LOGIN_DELAY, "a good login is not held");
    }

    /// Many requests with the same new credentials at once: one check, the rest wait for it.
    #[tokio::test]
    async fn concurrent_logins_share_a_check() {
        let hash = bcrypt::hash_with_salt("pw", 6, [2; 16]).unwrap().to_string();
        let a = Arc::new(accounts(&[&format!("alice:{hash}@/a")]));
        let permits = a.checks.available_permits();
        let logins: Vec<_> = (0..4 * permits + 4)
            .map(|_| {
                let a = a.clone();
                tokio::spawn(async move { a.login(&creds("alice", "pw")).await })
            })
            .collect();
        for l in logins {
            assert!(l.await.unwrap().is_ok());
        }
        assert!(a.checks_run() <= permits as u64, "{} checks for {permits} permits", a.checks_run());
    }

    #[test]
    fn many_failures_do_not_grow_without_bound() {
        let a = accounts(&["alice:pw@/a"]);
        let alice = a.rules().login("alice", &Secret::new("pw")).unwrap();
        a.remember(a.tag(&creds("alice", "pw")), Some(alice));
        for i in 0..REMEMBERED + 10 {
            a.remember(a.tag(&creds("alice", &i.to_string())), None);
        }
        assert!(a.lock().len() <= REMEMBERED);
        assert!(a.remembered(&a.tag(&creds("alice", "pw"))).is_some(), "successes outlive failures");
    }
}
