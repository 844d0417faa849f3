//! FTP logins (`USER`, `PASS`) against the node's rules, the same as HTTP's:
//! - where there are no accounts, any login is an anonymous session, as before rules existed;
//! - `anonymous` (any password) is an anonymous session, refused when the rules give anonymous
//!   clients nothing;
//! - any other name is checked by [`Accounts::login`] (bounded, remembered, and a refusal
//!   answered after [`crate::accounts::FAILED_LOGIN_DELAY`]); libunftp answers `530`.
//!
//! libunftp asks an `Authenticator` for a `Principal`, which holds only a name, then a
//! `UserDetailProvider` for the session's user. The user must keep the login itself (its files
//! fetched from other nodes carry it), so [`Login`] plays both parts: the principal names a
//! login it holds for the moment between the two calls.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use dftp_core::access::ANONYMOUS;
use dftp_core::{Credentials, Secret};
use unftp_core::auth::{
    AuthenticationError, Authenticator, Credentials as FtpCredentials, Principal, UserDetailError, UserDetailProvider,
};

use super::access::FtpUser;
use crate::accounts::Accounts;

/// The authenticator and user-detail provider of every FTP session.
#[derive(Debug)]
pub struct Login {
    accounts: Arc<Accounts>,
    /// Users logged in, until libunftp asks for them (at once, by the principal's name).
    handed: Mutex<HashMap<u64, FtpUser>>,
    next: AtomicU64,
}

impl Login {
    pub fn new(accounts: Arc<Accounts>) -> Login {
        Login { accounts, handed: Mutex::default(), next: AtomicU64::new(0) }
    }

    /// The session's user for a login, or why not.
    async fn user(&self, name: &str, password: Option<&str>) -> Result<FtpUser, AuthenticationError> {
        let rules = self.accounts.rules();
        if !rules.has_accounts() {
            return Ok(FtpUser::anonymous());
        }
        if name == ANONYMOUS {
            return if rules.anonymous_may_read_something() {
                Ok(FtpUser::anonymous())
            } else {
                Err(AuthenticationError::new("anonymous logins are not allowed here"))
            };
        }
        let login = Credentials::new(name, Secret::new(password.unwrap_or_default()));
        match self.accounts.login(&login).await {
            Ok(who) => Ok(FtpUser::logged_in(who, login)),
            Err(_) => Err(AuthenticationError::BadPassword),
        }
    }
}

#[async_trait]
impl Authenticator for Login {
    async fn authenticate(&self, username: &str, creds: &FtpCredentials) -> Result<Principal, AuthenticationError> {
        let user = self.user(username, creds.password.as_deref()).await?;
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.handed.lock().unwrap_or_else(|e| e.into_inner()).insert(id, user);
        Ok(Principal { username: id.to_string() })
    }

    fn name(&self) -> &str {
        "dftp"
    }
}

#[async_trait]
impl UserDetailProvider for Login {
    type User = FtpUser;

    async fn provide_user_detail(&self, principal: &Principal) -> Result<FtpUser, UserDetailError> {
        let id: Option<u64> = principal.username.parse().ok();
        let user = id.and_then(|id| self.handed.lock().unwrap_or_else(|e| e.into_inner()).remove(&id));
        user.ok_or_else(|| UserDetailError::Generic("the login was lost".into()))
    }
}

#[cfg(test)]
mod tests {
    use dftp_core::{Rule, Rules};

    use super::*;
    use crate::blocking::Blocking;

    fn login(rules: &[&str]) -> Login {
        let rules = if rules.is_empty() {
            Rules::open()
        } else {
            Rules::new(rules.iter().map(|r| Rule::parse(r).unwrap())).unwrap()
        };
        Login::new(Arc::new(Accounts::new(rules, Blocking::Inline)))
    }

    async fn session(l: &Login, name: &str, password: &str) -> Result<FtpUser, String> {
        let principal = l.authenticate(name, &password.into()).await.map_err(|e| e.to_string())?;
        l.provide_user_detail(&principal).await.map_err(|e| e.to_string())
    }

    #[tokio::test(start_paused = true)]
    async fn logins_by_the_rules() {
        let l = login(&["@/pub", "alice:pw@/"]);
        assert_eq!(session(&l, "anonymous", "me@example.org").await, Ok(FtpUser::anonymous()));
        let alice = session(&l, "alice", "pw").await.unwrap();
        assert_eq!(alice.who().user(), Some("alice"));
        assert!(alice.authorization().is_some());
        assert!(session(&l, "alice", "wrong").await.is_err());
        assert!(session(&l, "bob", "pw").await.is_err());
        assert!(l.handed.lock().unwrap().is_empty(), "every login was handed over");

        let users_only = login(&["alice:pw@/"]);
        let refused = session(&users_only, "anonymous", "x").await.unwrap_err();
        assert!(refused.contains("anonymous logins are not allowed"), "{refused}");

        let open = login(&[]);
        assert_eq!(session(&open, "whoever", "whatever").await, Ok(FtpUser::anonymous()));
    }
}
