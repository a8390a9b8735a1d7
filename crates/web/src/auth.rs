//! Who may see the dashboard and act on it: people by name and password
//! (HTTP Basic, checked against argon2 hashes from `blackbox passwd`), and
//! programs by a bearer token. Without either configured the server is
//! read-only and listens on loopback only (the command refuses any other
//! address). Actions (ack, silence) also need a CSRF token, tied to the
//! user and to this process.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::Mutex;

/// Who made a request: a user's name, `token` for a program, none when no
/// authentication is configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User(pub Option<String>);

/// The configured credentials.
pub struct Auth {
    users: Vec<(String, String)>,
    token: Option<String>,
    secret: [u8; 16],
    /// Authorization headers already verified (argon2 is slow on purpose).
    verified: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("users", &self.users.iter().map(|u| &u.0).collect::<Vec<_>>())
            .field("token", &self.token.is_some())
            .finish()
    }
}

/// An argon2id hash of `password` with a random salt, as `[web] users` takes it.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::encode_b64(&random()?).map_err(|e| e.to_string())?;
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

impl Auth {
    /// `users` as (name, hash); `token` the bearer token, if any.
    pub fn new(users: Vec<(String, String)>, token: Option<String>) -> Result<Auth, String> {
        for (name, hash) in &users {
            if name.is_empty() || name.contains(':') {
                return Err(format!("user name {name:?}: it must be non-empty and without ':'"));
            }
            PasswordHash::new(hash).map_err(|e| format!("the hash of user {name:?} is not one `blackbox passwd` makes: {e}"))?;
        }
        if let Some(t) = &token {
            if t.len() < 16 {
                return Err("the token is shorter than 16 characters: make a long random one (`head -c 32 /dev/urandom | base64`)".into());
            }
        }
        let secret = random()?;
        Ok(Auth { users, token, secret, verified: Mutex::new(HashMap::new()) })
    }

    /// No authentication: read-only, loopback only.
    pub fn none() -> Auth {
        Auth { users: Vec::new(), token: None, secret: [0; 16], verified: Mutex::new(HashMap::new()) }
    }

    /// Whether anyone must sign in.
    pub fn required(&self) -> bool {
        !self.users.is_empty() || self.token.is_some()
    }

    /// The user of a request; `None` when it must sign in ([`refuse`] says so).
    pub fn check(&self, headers: &HeaderMap) -> Option<User> {
        if !self.required() {
            return Some(User(None));
        }
        let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
        if let (Some(token), Some(t)) = (&self.token, given.strip_prefix("Bearer ")) {
            if same(t.trim().as_bytes(), token.as_bytes()) {
                return Some(User(Some("token".into())));
            }
            return None;
        }
        if let Some(b64) = given.strip_prefix("Basic ") {
            if let Some(name) = self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(given) {
                return Some(User(Some(name.clone())));
            }
            // Verified without holding the cache: wrong passwords slow down only their sender.
            let decoded = base64(b64.trim()).and_then(|b| String::from_utf8(b).ok());
            if let Some((name, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) {
                // An unknown user costs a verification too, so timing does not tell names.
                let first = self.users.first()?;
                let hash = self.users.iter().find(|(n, _)| n == name).map_or(first.1.as_str(), |(_, h)| h.as_str());
                let known = self.users.iter().any(|(n, _)| n == name);
                let ok = PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok()) && known;
                if ok {
                    let mut cache = self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    if cache.len() >= 64 {
                        cache.clear();
                    }
                    cache.insert(given.to_string(), name.to_string());
                    return Some(User(Some(name.to_string())));
                }
            }
        }
        None
    }

    /// The token a page sends back with an action, for `user`.
    pub fn csrf(&self, user: &User) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.secret.iter().copied().chain(user.0.as_deref().unwrap_or("").bytes()).chain(self.secret.iter().copied()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{h:016x}")
    }
}

/// 16 random bytes from the kernel.
fn random() -> Result<[u8; 16], String> {
    use std::io::Read;
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)).map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    Ok(b)
}

/// The answer that asks for credentials.
pub fn refuse() -> Response {
    let mut r = (StatusCode::UNAUTHORIZED, "sign in to see this site\n").into_response();
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"blackbox\", charset=\"UTF-8\""));
    r
}

/// Equal, in a time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Standard base64 (with or without padding); `None` when it is not.
pub fn base64(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().take_while(|&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_tokens_and_csrf() {
        let hash = hash_password("s3cret").unwrap();
        let auth = Auth::new(vec![("ann".into(), hash)], Some("0123456789abcdef0123".into())).unwrap();
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            h
        };
        // "ann:s3cret" and "ann:wrong"
        assert_eq!(auth.check(&with("Basic YW5uOnMzY3JldA==")).unwrap(), User(Some("ann".into())));
        assert_eq!(auth.check(&with("Basic YW5uOnMzY3JldA==")).unwrap(), User(Some("ann".into())), "from the cache");
        assert!(auth.check(&with("Basic YW5uOndyb25n")).is_none());
        assert!(auth.check(&HeaderMap::new()).is_none());
        assert_eq!(refuse().status(), StatusCode::UNAUTHORIZED);
        assert_eq!(auth.check(&with("Bearer 0123456789abcdef0123")).unwrap(), User(Some("token".into())));
        assert!(auth.check(&with("Bearer 0123456789abcdef0124")).is_none());
        assert_ne!(auth.csrf(&User(Some("ann".into()))), auth.csrf(&User(Some("bob".into()))));
        assert!(Auth::new(vec![("ann".into(), "plain".into())], None).unwrap_err().contains("not one `blackbox passwd` makes"));
        assert!(Auth::new(vec![], Some("short".into())).is_err());
        assert_eq!(base64("YW5uOnMzY3JldA").unwrap(), b"ann:s3cret");
        assert!(base64("**").is_none());
    }
}
