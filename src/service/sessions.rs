//! Browser sessions and the brake on guessing tokens.
//!
//! A browser cannot keep the API token out of reach of page scripts, so `POST /api/session`
//! exchanges it for a session cookie (`HttpOnly`, `SameSite=Strict`, random 256 bits, kept in
//! memory: a restart logs everyone out). A state-changing request authenticated by the cookie
//! must also come from the service's own pages (`Origin` or `Sec-Fetch-Site` say so), so a
//! page elsewhere cannot act with a user's cookie even in a browser that ignores `SameSite`.
//! The bearer-token API is unchanged.
//!
//! Wrong tokens are counted per client address: past [`MAX_FAILURES`] within
//! [`FAILURE_WINDOW`], that address gets 429 for every attempt, right or wrong, until the
//! window ends, so guessing from one address is slowed to a crawl.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;

pub const COOKIE: &str = "preroll_session";
pub const MAX_FAILURES: u32 = 10;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Sessions kept at most (the oldest go first); far more than the browsers of a household.
const MAX_SESSIONS: usize = 1000;

#[derive(Debug)]
pub struct Sessions {
    lifetime: Duration,
    /// Session id (hex) → when it expires.
    live: Mutex<HashMap<String, Instant>>,
    /// Client address → (window start, wrong tokens in it).
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a token check says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    Wrong,
    /// Too many wrong tokens from this address: try again after this long.
    Slowed(Duration),
}

impl Sessions {
    pub fn new(lifetime: Duration) -> Sessions {
        Sessions {
            lifetime,
            live: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
        }
    }

    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Checks `presented` against `token` for a client at `from`, counting wrong ones.
    pub fn check_token(&self, from: IpAddr, presented: &str, token: &str) -> Verdict {
        let now = Instant::now();
        let mut failures = lock(&self.failures);
        failures.retain(|_, (start, _)| now.duration_since(*start) < FAILURE_WINDOW);
        if let Some((start, n)) = failures.get(&from)
            && *n >= MAX_FAILURES
        {
            return Verdict::Slowed(FAILURE_WINDOW.saturating_sub(now.duration_since(*start)));
        }
        if bool::from(presented.as_bytes().ct_eq(token.as_bytes())) {
            return Verdict::Accepted;
        }
        let entry = failures.entry(from).or_insert((now, 0));
        entry.1 += 1;
        if entry.1 == MAX_FAILURES {
            tracing::warn!(client = %from, "{MAX_FAILURES} wrong tokens within a minute: refusing that address until the minute is up");
        }
        Verdict::Wrong
    }

    /// A new session; its id goes in the cookie.
    pub fn open(&self) -> std::io::Result<String> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let now = Instant::now();
        let mut live = lock(&self.live);
        live.retain(|_, expires| *expires > now);
        while live.len() >= MAX_SESSIONS {
            let Some(oldest) = live.iter().min_by_key(|(_, e)| **e).map(|(k, _)| k.clone()) else {
                break;
            };
            live.remove(&oldest);
        }
        live.insert(id.clone(), now + self.lifetime);
        Ok(id)
    }

    /// Whether `id` is a session that has not expired.
    pub fn valid(&self, id: &str) -> bool {
        let now = Instant::now();
        let live = lock(&self.live);
        // Compared in constant time against each: the map lookup's timing would not reveal
        // much of a 256-bit id, but there are few sessions and this costs nothing.
        live.iter()
            .any(|(k, e)| *e > now && bool::from(k.as_bytes().ct_eq(id.as_bytes())))
    }

    pub fn close(&self, id: &str) {
        lock(&self.live).remove(id);
    }
}

/// The session id in a `Cookie` header, if there is one.
pub fn session_cookie(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, v)| v)
}

/// Whether a cookie-authenticated request that changes something came from the service's
/// own pages: `Sec-Fetch-Site: same-origin`, or an `Origin` naming the host it was sent to.
pub fn same_origin(origin: Option<&str>, fetch_site: Option<&str>, host: Option<&str>) -> bool {
    if let Some(site) = fetch_site {
        return site == "same-origin";
    }
    match (origin, host) {
        (Some(origin), Some(host)) => origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|o| o == host),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_open_expire_and_close() {
        let s = Sessions::new(Duration::from_secs(3600));
        let id = s.open().unwrap();
        assert_eq!(id.len(), 64);
        assert!(s.valid(&id));
        assert!(!s.valid("0000"));
        s.close(&id);
        assert!(!s.valid(&id));
        let short = Sessions::new(Duration::ZERO);
        let gone = short.open().unwrap();
        assert!(!short.valid(&gone));
    }

    #[test]
    fn wrong_tokens_slow_their_address_only() {
        let s = Sessions::new(Duration::from_secs(60));
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        for _ in 0..MAX_FAILURES {
            assert_eq!(s.check_token(a, "guess", "right-token"), Verdict::Wrong);
        }
        // Even the right token is refused from there, for the rest of the minute.
        assert!(matches!(
            s.check_token(a, "right-token", "right-token"),
            Verdict::Slowed(_)
        ));
        assert_eq!(
            s.check_token(b, "right-token", "right-token"),
            Verdict::Accepted
        );
    }

    #[test]
    fn cookies_and_origins_are_read_strictly() {
        assert_eq!(session_cookie("a=1; preroll_session=abc; b=2"), Some("abc"));
        assert_eq!(session_cookie("xpreroll_session=abc"), None);
        assert!(same_origin(None, Some("same-origin"), None));
        assert!(!same_origin(
            Some("http://127.0.0.1:8780"),
            Some("cross-site"),
            Some("127.0.0.1:8780")
        ));
        assert!(same_origin(
            Some("http://127.0.0.1:8780"),
            None,
            Some("127.0.0.1:8780")
        ));
        assert!(!same_origin(
            Some("http://evil.example"),
            None,
            Some("127.0.0.1:8780")
        ));
        assert!(!same_origin(None, None, Some("127.0.0.1:8780")));
    }
}
