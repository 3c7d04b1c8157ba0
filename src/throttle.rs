//! Throttling of failed authentications per client address: after `limit` wrong tokens from one
//! address within a minute, every request from it that presents credentials is answered 429
//! until that minute is over — the right token included, so guessing stops rather than slows.
//! IPv6 clients are counted per /64, the block one host is usually given. Per process, in
//! memory: several processes on one database each allow `limit` per minute; a restart forgets.
//! Behind a proxy every client shares the proxy's address (the router does not trust
//! `X-Forwarded-For`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The window failures are counted in.
pub const WINDOW: Duration = Duration::from_secs(60);

/// More addresses than this are swept of finished windows before one is added.
const SWEEP_ABOVE: usize = 10_000;

pub struct AuthThrottle {
    /// Failures allowed per address per window; 0: no throttling.
    limit: u32,
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl AuthThrottle {
    pub fn new(limit: u32) -> AuthThrottle {
        AuthThrottle {
            limit,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(wait)` while `address` has used up its failures: how long until its window ends.
    pub fn check(&self, address: IpAddr) -> Result<(), Duration> {
        if self.limit == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        match windows.get(&key(address)) {
            Some((start, failures)) if *failures >= self.limit => {
                let left = WINDOW.saturating_sub(now.duration_since(*start));
                if left.is_zero() { Ok(()) } else { Err(left) }
            }
            _ => Ok(()),
        }
    }

    /// Counts a wrong token from `address`.
    pub fn failed(&self, address: IpAddr) {
        if self.limit == 0 {
            return;
        }
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() > SWEEP_ABOVE {
            windows.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        let window = windows.entry(key(address)).or_insert((now, 0));
        if now.duration_since(window.0) >= WINDOW {
            *window = (now, 0);
        }
        window.1 = window.1.saturating_add(1);
    }
}

/// IPv4 addresses as they are; IPv6 by their /64.
fn key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_throttled_after_its_failures_and_others_are_not() {
        let throttle = AuthThrottle::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        throttle.failed(a);
        assert!(throttle.check(a).is_ok());
        throttle.failed(a);
        let wait = throttle.check(a).unwrap_err();
        assert!(wait > Duration::from_secs(55) && wait <= WINDOW, "{wait:?}");
        assert!(throttle.check(b).is_ok());
    }

    #[test]
    fn ipv6_hosts_are_counted_by_their_64_and_mapped_v4_as_v4() {
        let throttle = AuthThrottle::new(1);
        throttle.failed("2001:db8:1:2::1".parse().unwrap());
        assert!(
            throttle
                .check("2001:db8:1:2:ffff::9".parse().unwrap())
                .is_err()
        );
        assert!(throttle.check("2001:db8:1:3::1".parse().unwrap()).is_ok());
        throttle.failed("::ffff:10.1.1.1".parse().unwrap());
        assert!(throttle.check("10.1.1.1".parse().unwrap()).is_err());
    }

    #[test]
    fn a_limit_of_zero_throttles_nothing() {
        let throttle = AuthThrottle::new(0);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..100 {
            throttle.failed(a);
        }
        assert!(throttle.check(a).is_ok());
    }
}
