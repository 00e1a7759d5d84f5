//! UI sessions: signed HttpOnly cookies issued for the API token, and the
//! CSRF token bound to each session.
//!
//! A session cookie is `v1.<expires>.<nonce>.<mac>` where `mac` is
//! HMAC-SHA256 over `v1.<expires>.<nonce>` with a key derived from the API
//! token, so sessions survive restarts and all end when the token changes.
//! Logging out revokes the nonce until the cookie would have expired.

use parking_lot::Mutex;
use ring::hmac;
use std::collections::HashMap;
use std::path::PathBuf;

pub const COOKIE: &str = "sightline_session";
/// How long a login lasts.
pub const TTL_SECS: i64 = 7 * 24 * 3600;

pub struct Sessions {
    key: hmac::Key,
    revoked: Mutex<HashMap<String, i64>>,
    /// Where revocations are kept across restarts (none in tests).
    revoked_file: Option<PathBuf>,
}

/// A valid session, as read from its cookie.
#[derive(Debug, Clone)]
pub struct Session {
    pub nonce: String,
    pub expires: i64,
}

fn now() -> i64 {
    sightline_pipeline::timefmt::now_ns() / 1_000_000_000
}

impl Sessions {
    pub fn new(api_token: &str, revoked_file: Option<PathBuf>) -> Self {
        let seed = ring::digest::digest(
            &ring::digest::SHA256,
            format!("sightline ui session key\0{api_token}").as_bytes(),
        );
        let t = now();
        let revoked = revoked_file
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|text| {
                text.lines()
                    .filter_map(|l| {
                        let (nonce, exp) = l.split_once(' ')?;
                        let exp: i64 = exp.trim().parse().ok()?;
                        (exp > t).then(|| (nonce.to_string(), exp))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Sessions {
            key: hmac::Key::new(hmac::HMAC_SHA256, seed.as_ref()),
            revoked: Mutex::new(revoked),
            revoked_file,
        }
    }

    fn mac(&self, msg: &str) -> String {
        hex::encode(hmac::sign(&self.key, msg.as_bytes()).as_ref())
    }

    /// A new session cookie value.
    pub fn issue(&self) -> String {
        let body = format!(
            "v1.{}.{}",
            now() + TTL_SECS,
            hex::encode(rand::random::<[u8; 16]>())
        );
        let mac = self.mac(&body);
        format!("{body}.{mac}")
    }

    /// The session a cookie value stands for, if it is genuine, unexpired and
    /// not logged out.
    pub fn check(&self, value: &str) -> Option<Session> {
        let (body, mac) = value.rsplit_once('.')?;
        let given = hex::decode(mac).ok()?;
        hmac::verify(&self.key, body.as_bytes(), &given).ok()?;
        let mut parts = body.split('.');
        if parts.next()? != "v1" {
            return None;
        }
        let expires: i64 = parts.next()?.parse().ok()?;
        let nonce = parts.next()?.to_string();
        if expires <= now() || self.revoked.lock().contains_key(&nonce) {
            return None;
        }
        Some(Session { nonce, expires })
    }

    /// Ends a session before its time, also for after a restart.
    pub fn revoke(&self, s: &Session) {
        let t = now();
        let mut r = self.revoked.lock();
        r.retain(|_, exp| *exp > t);
        r.insert(s.nonce.clone(), s.expires);
        if let Some(path) = &self.revoked_file {
            let text: String = r.iter().map(|(n, e)| format!("{n} {e}\n")).collect();
            let tmp = path.with_extension("tmp");
            let written = std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, path));
            if let Err(e) = written {
                tracing::warn!(error = %e, "cannot keep the logout across restarts");
            }
        }
    }

    /// The CSRF token every state change of this session must carry.
    pub fn csrf(&self, s: &Session) -> String {
        self.mac(&format!("csrf.{}", s.nonce))
    }

    pub fn csrf_ok(&self, s: &Session, token: &str) -> bool {
        crate::auth::secret_eq(&self.csrf(s), token)
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_cookies_check_and_forgeries_do_not() {
        let s = Sessions::new("slt_a", None);
        let c = s.issue();
        let sess = s.check(&c).expect("valid");
        assert_eq!(s.csrf(&sess).len(), 64);
        assert!(s.csrf_ok(&sess, &s.csrf(&sess)));
        assert!(!s.csrf_ok(&sess, "00"));
        // Another token's key, a changed expiry, garbage: all refused.
        assert!(Sessions::new("slt_b", None).check(&c).is_none());
        let (body, mac) = c.rsplit_once('.').unwrap();
        let mut parts: Vec<&str> = body.split('.').collect();
        let later = (now() + 10 * TTL_SECS).to_string();
        parts[1] = &later;
        assert!(s.check(&format!("{}.{mac}", parts.join("."))).is_none());
        for bad in ["", ".", "v1", "v1.1.2.zz", "v1.x.y.00", &c[..c.len() - 1]] {
            assert!(s.check(bad).is_none(), "{bad:?}");
        }
        // Revoked sessions end.
        s.revoke(&sess);
        assert!(s.check(&c).is_none());
        assert!(s.check(&s.issue()).is_some());
    }

    #[test]
    fn a_logout_holds_across_restarts() {
        let dir = std::env::temp_dir().join(format!("sl-revoked-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("revoked");
        let s = Sessions::new("slt_a", Some(file.clone()));
        let (out, kept) = (s.issue(), s.issue());
        s.revoke(&s.check(&out).unwrap());
        let again = Sessions::new("slt_a", Some(file.clone()));
        assert!(again.check(&out).is_none());
        assert!(again.check(&kept).is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn cookie_header_lookup() {
        assert_eq!(cookie("a=1; sightline_session=v; b=2", COOKIE), Some("v"));
        assert_eq!(cookie("a=1", COOKIE), None);
    }
}
