//! Authorization codes, grants (one per code exchange) and the tokens issued for them.
//!
//! A grant holds exactly one live access/refresh pair: refreshing rotates both, revoking kills
//! the grant, which is how Discord treats refresh tokens as single-use.

mod pkce;

use std::collections::HashMap;

use rand::distributions::Alphanumeric;
use rand::Rng;

pub(crate) use pkce::s256_challenge;

use crate::error::OAuthError;

/// Seven days, as Discord issues them.
pub(crate) const ACCESS_TOKEN_TTL_SECS: u64 = 604_800;
const CODE_TTL_SECS: f64 = 600.0;

#[derive(Debug, Default)]
pub(crate) struct OAuthStore {
    codes: HashMap<String, PendingCode>,
    grants: HashMap<u64, Grant>,
    access: HashMap<String, AccessToken>,
    refresh: HashMap<String, u64>,
    next_grant: u64,
    /// Every token ever issued, revoked or not (tests look for leaks of any of them).
    issued: Vec<String>,
}

/// What the user approved on the consent page.
#[derive(Clone, Debug)]
pub(crate) struct Approval {
    pub(crate) user: u64,
    pub(crate) scopes: Vec<String>,
    pub(crate) redirect_uri: Option<String>,
    pub(crate) code_challenge: Option<String>,
}

#[derive(Debug)]
struct PendingCode {
    approval: Approval,
    expires_at: f64,
}

#[derive(Debug)]
struct Grant {
    user: u64,
    scopes: Vec<String>,
    revoked: bool,
}

#[derive(Debug)]
struct AccessToken {
    grant: u64,
    expires_at: f64,
}

/// The token endpoint's success body.
#[derive(Debug, serde::Serialize)]
pub(crate) struct IssuedTokens {
    pub(crate) access_token: String,
    pub(crate) token_type: &'static str,
    pub(crate) expires_in: u64,
    pub(crate) refresh_token: String,
    pub(crate) scope: String,
}

/// Who a valid access token speaks for.
#[derive(Clone, Debug)]
pub(crate) struct TokenOwner {
    pub(crate) user: u64,
    pub(crate) scopes: Vec<String>,
}

impl TokenOwner {
    pub(crate) fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

impl OAuthStore {
    pub(crate) fn issue_code(&mut self, approval: Approval, now: f64) -> String {
        let code = random_token(30);
        self.codes.insert(
            code.clone(),
            PendingCode {
                approval,
                expires_at: now + CODE_TTL_SECS,
            },
        );
        code
    }

    /// The code is consumed only by a successful exchange, so a client may retry a mistyped
    /// verifier; reuse after success fails.
    pub(crate) fn exchange_code(
        &mut self,
        code: &str,
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
        now: f64,
    ) -> Result<IssuedTokens, OAuthError> {
        let invalid_code = || OAuthError::invalid_grant("Invalid \"code\" in request.");
        let pending = self.codes.get(code).ok_or_else(invalid_code)?;
        if now > pending.expires_at {
            self.codes.remove(code);
            return Err(invalid_code());
        }
        if let Some(expected) = &pending.approval.redirect_uri {
            if redirect_uri != Some(expected.as_str()) {
                return Err(OAuthError::invalid_grant(
                    "Invalid \"redirect_uri\" in request.",
                ));
            }
        }
        if let Some(challenge) = &pending.approval.code_challenge {
            let matches = verifier.is_some_and(|v| &s256_challenge(v) == challenge);
            if !matches {
                return Err(OAuthError::invalid_grant(
                    "Invalid \"code_verifier\" in request.",
                ));
            }
        }
        let approval = self.codes.remove(code).ok_or_else(invalid_code)?.approval;
        let grant = self.next_grant;
        self.next_grant += 1;
        self.grants.insert(
            grant,
            Grant {
                user: approval.user,
                scopes: approval.scopes,
                revoked: false,
            },
        );
        Ok(self.issue_pair(grant, now))
    }

    pub(crate) fn refresh(
        &mut self,
        refresh_token: &str,
        now: f64,
    ) -> Result<IssuedTokens, OAuthError> {
        let grant = self
            .refresh
            .remove(refresh_token)
            .ok_or_else(|| OAuthError::invalid_grant("Invalid \"refresh_token\" in request."))?;
        self.access.retain(|_, t| t.grant != grant);
        Ok(self.issue_pair(grant, now))
    }

    /// Either kind of token revokes the whole authorization; unknown tokens are ignored (RFC 7009).
    pub(crate) fn revoke(&mut self, token: &str) {
        let grant = self
            .access
            .get(token)
            .map(|t| t.grant)
            .or_else(|| self.refresh.get(token).copied());
        if let Some(grant) = grant {
            self.revoke_grant(grant);
        }
    }

    pub(crate) fn revoke_user(&mut self, user: u64) {
        let grants: Vec<u64> = self
            .grants
            .iter()
            .filter(|(_, g)| g.user == user && !g.revoked)
            .map(|(id, _)| *id)
            .collect();
        for grant in grants {
            self.revoke_grant(grant);
        }
    }

    /// Every access and refresh token ever issued (for tests that look for leaks).
    pub(crate) fn issued_tokens(&self) -> Vec<String> {
        self.issued.clone()
    }

    /// Users with at least one grant not revoked: Discord's "Authorized Apps" of each lists us.
    pub(crate) fn authorized_users(&self) -> std::collections::BTreeSet<u64> {
        self.grants
            .values()
            .filter(|g| !g.revoked)
            .map(|g| g.user)
            .collect()
    }

    pub(crate) fn active_grants(&self, user: u64) -> usize {
        self.grants
            .values()
            .filter(|g| g.user == user && !g.revoked)
            .count()
    }

    pub(crate) fn access_owner(&self, token: &str, now: f64) -> Option<TokenOwner> {
        let access = self.access.get(token).filter(|t| now <= t.expires_at)?;
        let grant = self.grants.get(&access.grant).filter(|g| !g.revoked)?;
        Some(TokenOwner {
            user: grant.user,
            scopes: grant.scopes.clone(),
        })
    }

    fn revoke_grant(&mut self, grant: u64) {
        if let Some(g) = self.grants.get_mut(&grant) {
            g.revoked = true;
        }
        self.access.retain(|_, t| t.grant != grant);
        self.refresh.retain(|_, g| *g != grant);
    }

    fn issue_pair(&mut self, grant: u64, now: f64) -> IssuedTokens {
        let access_token = random_token(30);
        let refresh_token = random_token(30);
        self.access.insert(
            access_token.clone(),
            AccessToken {
                grant,
                expires_at: now + ACCESS_TOKEN_TTL_SECS as f64,
            },
        );
        self.refresh.insert(refresh_token.clone(), grant);
        self.issued.push(access_token.clone());
        self.issued.push(refresh_token.clone());
        let scope = self
            .grants
            .get(&grant)
            .map(|g| g.scopes.join(" "))
            .unwrap_or_default();
        IssuedTokens {
            access_token,
            token_type: "Bearer",
            expires_in: ACCESS_TOKEN_TTL_SECS,
            refresh_token,
            scope,
        }
    }
}

fn random_token(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}
