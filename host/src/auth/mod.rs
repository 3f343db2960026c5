//! Users, passwords, login sessions and API tokens.
//!
//! Passwords are hashed with argon2id. A token is 32 random bytes shown to the client
//! once; only its SHA-256 is stored, so a leaked database does not leak live tokens.
//! Login tokens expire (`CRM_SESSION_HOURS`); API tokens expire when asked to.

pub mod routes;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::AssertSqlSafe;
use sqlx::Row;
use utoipa::ToSchema;

use crate::api::error::{ApiError, FieldError};
use crate::db::{self, Db};

/// Who is making a request: a user, through one of its tokens.
#[derive(Clone, Debug)]
pub struct Actor {
    pub user_id: String,
    pub email: String,
    pub name: String,
    /// The token this request came with (logout revokes it).
    pub token_id: String,
    /// Set when a plugin acts for the user: its changes carry the plugin's id, so its
    /// own after-save hook does not run on them again.
    pub plugin: Option<String>,
}

/// A user as the API shows it (never with its password hash).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    /// Holds the organisation admin role (see /api/v1/users/{id}/memberships).
    pub is_admin: bool,
    pub active: bool,
    pub created_at: String,
}

/// A user's choices for the web pages, as stored: language, digits, calendar codes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UiPreferences {
    pub locale: String,
    pub digits: String,
    pub calendar: String,
}

/// A login or API token as listed (the secret itself is shown only when created).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub created_at: String,
    pub expires_at: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing or malformed Authorization header; send 'Authorization: Bearer <token>'")]
    MissingToken,
    #[error("the token is unknown, expired or revoked")]
    BadToken,
    #[error("wrong email or password")]
    BadCredentials,
    #[error("invalid user")]
    Invalid(Vec<FieldError>),
    #[error("a user with this email already exists")]
    EmailTaken,
    #[error("no such token")]
    NoSuchToken,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::MissingToken | AuthError::BadToken | AuthError::BadCredentials => {
                ApiError::unauthorized(e.to_string())
            }
            AuthError::Invalid(errors) => ApiError::invalid("the user is not valid", errors),
            AuthError::EmailTaken => ApiError::invalid(
                "the user is not valid",
                vec![FieldError::new("email", "is already used by another user")],
            ),
            AuthError::NoSuchToken => ApiError::not_found(e.to_string()),
            AuthError::Db(e) => e.into(),
        }
    }
}

pub const MIN_PASSWORD_LEN: usize = 8;

#[derive(Clone)]
pub struct AuthService {
    db: Db,
    session_hours: i64,
    recent: Arc<Mutex<HashMap<String, Verified>>>,
}

/// How long a verified token is trusted without asking the database again. A token
/// revoked or a user deactivated on this process is forgotten at once; on another
/// process of a scaled-out deployment it stops working within this time.
const VERIFIED_FOR: Duration = Duration::from_secs(1);
/// Verified tokens remembered at most (the memory is cleared when full).
const MAX_VERIFIED: usize = 10_000;

#[derive(Clone)]
struct Verified {
    actor: Actor,
    expires_at: Option<String>,
    at: Instant,
}

impl AuthService {
    pub fn new(db: Db, session_hours: i64) -> Self {
        AuthService {
            db,
            session_hours,
            recent: Arc::default(),
        }
    }

    /// Forgets every verified token: after a logout, a revocation or a deactivation.
    fn forget_verified(&self) {
        self.recent.lock().expect("lock").clear();
    }

    pub async fn user_count(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.db.pool)
            .await
    }

    /// Creates a user with its first membership (department, role) in one
    /// transaction, so no user exists without a place; reports every invalid field
    /// at once. The department and role must exist (the caller checked them).
    pub async fn create_user(
        &self,
        email: &str,
        name: &str,
        password: &str,
        membership: (&str, &str),
    ) -> Result<User, AuthError> {
        let is_admin = membership.1 == "org_admin";
        let email = email.trim().to_lowercase();
        let mut errors = Vec::new();
        if !email.contains('@') || email.len() > 254 || email.chars().any(char::is_whitespace) {
            errors.push(FieldError::new("email", "must be an email address"));
        }
        if name.trim().is_empty() || name.chars().count() > 200 {
            errors.push(FieldError::new("name", "must be 1 to 200 characters"));
        }
        if password.chars().count() < MIN_PASSWORD_LEN || password.len() > 1024 {
            errors.push(FieldError::new(
                "password",
                format!("must be {MIN_PASSWORD_LEN} to 1024 characters"),
            ));
        }
        if !errors.is_empty() {
            return Err(AuthError::Invalid(errors));
        }
        let hash = hash_password(password.to_string()).await;
        let now = db::now();
        let user = User {
            id: db::new_id(),
            email,
            name: name.trim().to_string(),
            is_admin,
            active: true,
            created_at: now.clone(),
        };
        let mut tx = self.db.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO users (id, email, name, password_hash, is_admin, active, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 1, $6, $6)",
        )
        .bind(&user.id)
        .bind(&user.email)
        .bind(&user.name)
        .bind(&hash)
        .bind(is_admin as i64)
        .bind(&now)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e)
                if e.as_database_error()
                    .is_some_and(|d| d.is_unique_violation()) =>
            {
                return Err(AuthError::EmailTaken);
            }
            Err(e) => return Err(e.into()),
        }
        sqlx::query(
            "INSERT INTO memberships (user_id, department_id, role, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&user.id)
        .bind(membership.0)
        .bind(membership.1)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        crate::access::bump_policy_version(&mut tx).await?;
        tx.commit().await?;
        Ok(user)
    }

    pub async fn list_users(&self) -> Result<Vec<User>, sqlx::Error> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users ORDER BY email"
        )))
        .fetch_all(&self.db.pool)
        .await?;
        Ok(rows.iter().map(user_from_row).collect())
    }

    pub async fn get_user(&self, id: &str) -> Result<Option<User>, sqlx::Error> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.db.pool)
        .await?;
        Ok(row.as_ref().map(user_from_row))
    }

    /// What the user chose for the web pages; `None` until it chose.
    pub async fn ui_preferences(
        &self,
        user_id: &str,
    ) -> Result<Option<UiPreferences>, sqlx::Error> {
        let row = sqlx::query("SELECT locale, digits, calendar FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&self.db.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let locale: Option<String> = row.try_get("locale")?;
        Ok(locale.map(|locale| UiPreferences {
            locale,
            digits: row
                .try_get::<Option<String>, _>("digits")
                .ok()
                .flatten()
                .unwrap_or_default(),
            calendar: row
                .try_get::<Option<String>, _>("calendar")
                .ok()
                .flatten()
                .unwrap_or_default(),
        }))
    }

    /// Saves the user's choices for the web pages (checked by the caller).
    pub async fn set_ui_preferences(
        &self,
        user_id: &str,
        prefs: &UiPreferences,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE users SET locale = $1, digits = $2, calendar = $3 WHERE id = $4")
            .bind(&prefs.locale)
            .bind(&prefs.digits)
            .bind(&prefs.calendar)
            .bind(user_id)
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }

    /// Renames a user and/or (de)activates it. A deactivated user's tokens stop
    /// working at once and it holds no roles; its records keep their owner.
    pub async fn update_user(
        &self,
        id: &str,
        name: Option<&str>,
        active: Option<bool>,
    ) -> Result<Option<User>, AuthError> {
        if crate::plugins::is_identity(id) {
            return Err(AuthError::Invalid(vec![FieldError::new(
                "id",
                "is a plugin's own identity; enable, disable or uninstall the plugin instead",
            )]));
        }
        if let Some(name) = name
            && (name.trim().is_empty() || name.chars().count() > 200)
        {
            return Err(AuthError::Invalid(vec![FieldError::new(
                "name",
                "must be 1 to 200 characters",
            )]));
        }
        let mut tx = self.db.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE users SET name = COALESCE($1, name), active = COALESCE($2, active), updated_at = $3 WHERE id = $4",
        )
        .bind(name.map(str::trim))
        .bind(active.map(i64::from))
        .bind(db::now())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        if active == Some(false) {
            sqlx::query(
                "UPDATE auth_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
            )
            .bind(db::now())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        // Memberships of inactive users drop out of the access policy.
        crate::access::bump_policy_version(&mut tx).await?;
        tx.commit().await?;
        self.forget_verified();
        Ok(self.get_user(id).await?)
    }

    /// Checks the password and opens a session; returns the token and its expiry.
    pub async fn login(&self, email: &str, password: &str) -> Result<(String, String), AuthError> {
        let row = sqlx::query("SELECT id, password_hash, active FROM users WHERE email = $1")
            .bind(email.trim().to_lowercase())
            .fetch_optional(&self.db.pool)
            .await?;
        // Verify against a fixed hash when the user is unknown, so the answer takes as
        // long either way and does not reveal which emails exist.
        let (user_id, hash, active) = match &row {
            Some(r) => (
                Some(r.try_get::<String, _>("id")?),
                r.try_get::<String, _>("password_hash")?,
                r.try_get::<i64, _>("active")? == 1,
            ),
            None => (None, DUMMY_HASH.to_string(), false),
        };
        let ok = verify_password(password.to_string(), hash).await;
        match user_id {
            Some(id) if ok && active => {
                let expires = db::format_time(
                    chrono::Utc::now() + chrono::Duration::hours(self.session_hours),
                );
                let (token, _) = self
                    .issue_token(&id, "session", "login", Some(expires.clone()))
                    .await?;
                Ok((token, expires))
            }
            _ => Err(AuthError::BadCredentials),
        }
    }

    /// Creates an API token for `actor`'s user.
    pub async fn create_api_token(
        &self,
        actor: &Actor,
        name: &str,
        expires_in_days: Option<u32>,
    ) -> Result<(String, TokenInfo), AuthError> {
        if name.trim().is_empty() || name.chars().count() > 100 {
            return Err(AuthError::Invalid(vec![FieldError::new(
                "name",
                "must be 1 to 100 characters",
            )]));
        }
        let expires = match expires_in_days {
            Some(0) | Some(3651..) => {
                return Err(AuthError::Invalid(vec![FieldError::new(
                    "expires_in_days",
                    "must be 1 to 3650",
                )]));
            }
            Some(days) => Some(db::format_time(
                chrono::Utc::now() + chrono::Duration::days(days as i64),
            )),
            None => None,
        };
        self.issue_token(&actor.user_id, "api", name.trim(), expires)
            .await
    }

    async fn issue_token(
        &self,
        user_id: &str,
        kind: &str,
        name: &str,
        expires_at: Option<String>,
    ) -> Result<(String, TokenInfo), AuthError> {
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let token = format!(
            "crm_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
        );
        let info = TokenInfo {
            id: db::new_id(),
            name: name.to_string(),
            kind: kind.to_string(),
            created_at: db::now(),
            expires_at,
        };
        sqlx::query(
            "INSERT INTO auth_tokens (id, user_id, kind, name, token_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&info.id)
        .bind(user_id)
        .bind(kind)
        .bind(&info.name)
        .bind(token_hash(&token))
        .bind(&info.created_at)
        .bind(&info.expires_at)
        .execute(&self.db.pool)
        .await?;
        Ok((token, info))
    }

    /// Resolves a bearer token to its user; expired, revoked and deactivated are refused.
    /// A token verified within the last [`VERIFIED_FOR`] is not looked up again: the
    /// lookup is a database round trip on every request.
    pub async fn authenticate(&self, token: &str) -> Result<Actor, AuthError> {
        let hash = token_hash(token);
        let now = db::now();
        if let Some(v) = self.recent.lock().expect("lock").get(&hash)
            && v.at.elapsed() < VERIFIED_FOR
            && v.expires_at.as_ref().is_none_or(|e| *e > now)
        {
            return Ok(v.actor.clone());
        }
        let row = sqlx::query(
            "SELECT t.id AS token_id, t.expires_at, u.id AS user_id, u.email, u.name \
             FROM auth_tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL \
               AND (t.expires_at IS NULL OR t.expires_at > $2) AND u.active = 1",
        )
        .bind(&hash)
        .bind(&now)
        .fetch_optional(&self.db.pool)
        .await?
        .ok_or(AuthError::BadToken)?;
        let actor = Actor {
            token_id: row.try_get("token_id")?,
            user_id: row.try_get("user_id")?,
            email: row.try_get("email")?,
            name: row.try_get("name")?,
            plugin: None,
        };
        let mut recent = self.recent.lock().expect("lock");
        if recent.len() >= MAX_VERIFIED {
            recent.clear();
        }
        recent.insert(
            hash,
            Verified {
                actor: actor.clone(),
                expires_at: row.try_get("expires_at")?,
                at: Instant::now(),
            },
        );
        Ok(actor)
    }

    /// Revokes the token the actor is using.
    pub async fn logout(&self, actor: &Actor) -> Result<(), AuthError> {
        sqlx::query("UPDATE auth_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(db::now())
            .bind(&actor.token_id)
            .execute(&self.db.pool)
            .await?;
        self.forget_verified();
        Ok(())
    }

    pub async fn list_api_tokens(&self, actor: &Actor) -> Result<Vec<TokenInfo>, AuthError> {
        let rows = sqlx::query(
            "SELECT id, name, kind, created_at, expires_at FROM auth_tokens \
             WHERE user_id = $1 AND kind = 'api' AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2) \
             ORDER BY id",
        )
        .bind(&actor.user_id)
        .bind(db::now())
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TokenInfo {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    kind: r.try_get("kind")?,
                    created_at: r.try_get("created_at")?,
                    expires_at: r.try_get("expires_at")?,
                })
            })
            .collect()
    }

    /// Revokes one of the actor's own API tokens.
    pub async fn revoke_api_token(&self, actor: &Actor, id: &str) -> Result<(), AuthError> {
        let done = sqlx::query(
            "UPDATE auth_tokens SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND kind = 'api' AND revoked_at IS NULL",
        )
        .bind(db::now())
        .bind(id)
        .bind(&actor.user_id)
        .execute(&self.db.pool)
        .await?;
        self.forget_verified();
        if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(AuthError::NoSuchToken)
        }
    }
}

/// Whether a user is an admin is a matter of its memberships, not of a flag.
const USER_COLUMNS: &str = "id, email, name, active, created_at, \
     CAST(CASE WHEN EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = users.id AND m.role = 'org_admin') \
     THEN 1 ELSE 0 END AS BIGINT) AS is_admin";

fn user_from_row(r: &sqlx::any::AnyRow) -> User {
    User {
        id: r.get("id"),
        email: r.get("email"),
        name: r.get("name"),
        is_admin: r.get::<i64, _>("is_admin") == 1,
        active: r.get::<i64, _>("active") == 1,
        created_at: r.get("created_at"),
    }
}

pub fn token_hash(token: &str) -> String {
    crate::hex(&Sha256::digest(token.as_bytes()))
}

/// argon2 takes tens of milliseconds of CPU: keep it off the async workers.
async fn hash_password(password: String) -> String {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .expect("argon2 hashing cannot fail with default parameters")
            .to_string()
    })
    .await
    .expect("password hashing task panicked")
}

async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

/// An argon2id hash of a random password nobody knows, for unknown emails.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0b8YrnZ5n2oP1J4m1e3TvT8Ib3QTm1cGz1OeqfN0Kqs";

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_password_verifies_only_against_its_own_hash() {
        let hash = hash_password("correct horse".into()).await;
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse".into(), hash.clone()).await);
        assert!(!verify_password("wrong horse".into(), hash).await);
        assert!(!verify_password("anything".into(), DUMMY_HASH.into()).await);
    }

    #[test]
    fn tokens_are_stored_as_hashes() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
